"""What a job's hosts and an endpoint's containers sign their AWS calls with, and when it ends.

SageMaker hands a container its execution role's credentials. Where they come from is app.py's
choice, passed in as an `Issuer`: without `--auth` nothing checks signatures, so every container
gets the contract's fixed local pair (`fixed_pair`); with `--auth` each gets a fresh temporary key
of its role from smlocal's STS, revoked when its job ends or its instance stops. The services call
the issuer and release the lease; they never know which one they were given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from emulator.runtime import contract


def _nothing() -> None:
    pass


@dataclass(frozen=True)
class Lease:
    """The variables (AWS_ACCESS_KEY_ID, …) a container gets, and how to take them back."""

    environment: dict[str, str]
    release: Callable[[], None] = field(default=_nothing, compare=False)


# (account of the job or endpoint, role ARN, session name, region) → Lease; ValueError: none can be issued
Issuer = Callable[[str, str, str, str], Lease]


def fixed_pair(account: str, role_arn: str, session_name: str, region: str) -> Lease:
    return Lease(dict(contract.CONTAINER_CREDENTIALS))
