"""What every operation is handed: who is calling, from which region, at what time."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


class Clock:
    """Injectable time source, so state machines can be tested without sleeping."""

    def now(self) -> float:
        return time.time()


@dataclass
class RequestContext:
    account: str
    region: str
    service: str = ""
    operation: str = ""
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    headers: dict = field(default_factory=dict)
    now: float = field(default_factory=time.time)

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name.lower()}"
