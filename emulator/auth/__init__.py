"""Authentication for a shared machine: SigV4 verified against the keys smlocal's IAM knows.

`Authenticator.authenticate` proves who calls (emulator/auth/authenticator.py), `Authorizer.check`
refuses other accounts' resources (access.py), `issue_container_credentials` gives a job or
endpoint container its role's own key (container.py), `exposure_check` decides whether a listening
address needs `--auth` (exposure.py). `from_config` builds the Authenticator from the Config.

The pipeline's seam, after the request context is built and before dispatch (ASGI scope names):

    principal = authenticator.authenticate(scope["method"], scope["raw_path"], scope["query_string"],
                                           scope["headers"], body)      # or authenticate_streaming
    authorizer.check(principal, scope["method"], scope["raw_path"], scope["query_string"],
                     scope["headers"], body)
    # then: account = principal.account, region = principal.region; moto gets x-moto-account-id
    # set to principal.account (the caller's own header was refused above)
  except AuthError as error: error.wire(protocol) for the protocol layer's serializer, or
    error.render(protocol, request_id) → (status, headers, body) for S3's and query's XML.
"""

from __future__ import annotations

from emulator.auth.access import Authorizer, may_access
from emulator.auth.authenticator import Authenticator, Principal
from emulator.auth.container import ContainerCredentials, issue_container_credentials, revoke_container_credentials
from emulator.auth.errors import AuthError, protocol_of
from emulator.auth.exposure import exposure_check
from emulator.auth.keys import KeyRing, parse_root_key

__all__ = ["AuthError", "Authenticator", "Authorizer", "ContainerCredentials", "KeyRing", "Principal",
           "exposure_check", "from_config", "issue_container_credentials", "may_access", "protocol_of",
           "revoke_container_credentials"]


def from_config(config) -> Authenticator | None:
    """The Authenticator for a Config with `auth` on (None when it is off). The root key is the
    configured one; the CLI has already stored or generated it (see `root_key_for`)."""
    if not getattr(config, "auth", False):
        return None
    root = parse_root_key(config.auth_root_key) if config.auth_root_key else None
    return Authenticator(KeyRing(root=root))
