"""Credentials a job or endpoint container gets for its execution role, as SageMaker hands a
container its role's credentials.

They are issued by smlocal's own STS (moto's AssumeRole), so the Authenticator knows them like any
other temporary key: they verify only with their session token, act in the role's account (and
nowhere else), expire, and stop working the moment STS forgets them. A container signing with them
therefore reaches exactly what a signed request of that account may, instead of whatever the
server's own credentials could.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

ROLE_ARN = re.compile(r"^arn:(aws[\w-]*):iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
DEFAULT_DURATION_SECONDS = 12 * 3600  # a role's longest session; containers get no refresh


@dataclass(frozen=True)
class ContainerCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime
    account: str
    role_arn: str

    def environment(self) -> dict[str, str]:
        """The variables botocore (and every AWS SDK) reads credentials from."""
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
                "AWS_SESSION_TOKEN": self.session_token}


def issue_container_credentials(role_arn: str, session_name: str, region: str = "us-east-1",
                                duration_seconds: int = DEFAULT_DURATION_SECONDS) -> ContainerCredentials:
    """A fresh key pair and session token for `role_arn`, in the role's own account.

    `session_name` names the session in the assumed-role ARN (AWS uses the job's name, e.g.
    `SageMaker`); it is trimmed to STS's 64 characters and pattern."""
    match = ROLE_ARN.match(role_arn or "")
    if not match:
        raise ValueError(f"not an IAM role ARN: {role_arn!r}")
    from moto.sts.models import sts_backends
    from moto.utilities.utils import get_partition

    account = match.group(2)
    session = re.sub(r"[^\w+=,.@-]", "-", session_name)[:64] or "SageMaker"
    backend = sts_backends[account][get_partition(region)]
    role = backend.assume_role(region_name=region, role_session_name=session, role_arn=role_arn,
                               policy=None, duration=duration_seconds, external_id=None)
    expiration = role.expiration if role.expiration.tzinfo else role.expiration.replace(tzinfo=timezone.utc)
    return ContainerCredentials(role.access_key_id, role.secret_access_key, role.session_token, expiration,
                                role.account_id, role_arn)


def revoke_container_credentials(credentials: ContainerCredentials, region: str = "us-east-1") -> None:
    """Forget the session when its job or endpoint ends, so its key stops verifying at once."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends
    from moto.utilities.utils import get_partition

    partition = get_partition(region)
    backend = sts_backends[credentials.account][partition]
    backend.assumed_roles = [role for role in backend.assumed_roles
                             if role.access_key_id != credentials.access_key_id]
    keys = dict.get(iam_backends.get(credentials.account) or {}, partition)  # dict.get: never creates one
    if keys is not None:
        keys.access_keys.pop(credentials.access_key_id, None)
