"""What an ML instance type gives a job on AWS: vCPUs and memory, for `--instance-limits`.

An instance type's size names its vCPUs (`large` 2, `xlarge` 4, `2xlarge` 8, ...) and its family
letter the memory per vCPU (general purpose `m` 4 GiB, compute `c` 2 GiB, memory `r` 8 GiB, ...), as
EC2 builds them; `medium` (t2, t3) is 2 vCPUs with half of `large`'s memory. A type this table does
not cover runs without limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GiB = 1024 ** 3
# family letter → GiB per vCPU (p3: 61 GiB for 8 vCPUs)
MEMORY_PER_CPU = {"m": 4.0, "c": 2.0, "r": 8.0, "t": 4.0, "g": 4.0, "p": 7.625, "x": 16.0}
SIZES = {"medium": 2, "large": 2, "xlarge": 4}
_TYPE = re.compile(r"^ml\.(?P<family>[a-z])[0-9a-z-]*\.(?P<size>medium|large|(?P<times>[0-9]*)xlarge)$")


@dataclass(frozen=True)
class Resources:
    cpus: int
    memory_bytes: int


def resources(instance_type: str) -> Resources | None:
    """The vCPUs and memory of `instance_type` (`ml.m5.large` → 2 CPUs, 8 GiB), or None if unknown."""
    match = _TYPE.match(instance_type or "")
    if match is None or match["family"] not in MEMORY_PER_CPU:
        return None
    cpus = 4 * int(match["times"]) if match["times"] else SIZES[match["size"]]
    per_cpu = MEMORY_PER_CPU[match["family"]] * (0.5 if match["size"] == "medium" else 1.0)
    return Resources(cpus, int(cpus * per_cpu * GiB))
