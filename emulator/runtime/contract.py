"""SageMaker's container contract, named once: /opt/ml paths, config files, variables, ports.

Used by the emulator (to lay out a host's tree and run it) and by algorithms/ (to read it). A
process that runs outside a container finds its /opt/ml under the folder named by SMLOCAL_OPT_ML.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

OPT_ML = "/opt/ml"
ROOT_ENV = "SMLOCAL_OPT_ML"  # re-roots /opt/ml for programs run as local processes
HOSTS_ENV = "SMLOCAL_HOST_ADDRESSES"  # JSON {host: address} where hosts cannot resolve each other
# The image URI a built-in algorithm was started for (`…/xgboost:1`, `…/sagemaker-xgboost:1.7-1`):
# one program in algorithms/ stands for several images whose answers differ (legacy XGBoost
# answers text/csv on one comma-joined line), and only the runtime knows which one was asked for.
IMAGE_ENV = "SMLOCAL_ALGORITHM_IMAGE"

SERVING_PORT = 8080
BIND_TO_PORT_ENV = "SAGEMAKER_BIND_TO_PORT"
TRAIN, SERVE = "train", "serve"
FAILURE_REASON_LIMIT = 1024
# What a training host or serving container signs its AWS calls with while smlocal checks no
# signatures (with --auth: its role's temporary key instead); never the server's own credentials.
CONTAINER_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "smlocal", "AWS_SECRET_ACCESS_KEY": "smlocal"}


def aws_environment(region: str, endpoint_url: str | None, credentials: dict[str, str] | None = None) -> dict[str, str]:
    """How code in a host or a serving container reaches AWS, that is smlocal: the region, the
    credentials (CONTAINER_CREDENTIALS unless given) and, where it can reach smlocal, AWS_ENDPOINT_URL."""
    env = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region,
           **(CONTAINER_CREDENTIALS if credentials is None else credentials)}
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    return env


def host_name(index: int) -> str:
    """Hosts are algo-1 … algo-N (1-based), as SageMaker names them."""
    return f"algo-{index}"


@dataclass(frozen=True)
class OptMl:
    """The /opt/ml tree rooted anywhere (the real /opt/ml inside a container, a job folder outside)."""

    root: Path

    @classmethod
    def from_env(cls) -> "OptMl":
        return cls(Path(os.environ.get(ROOT_ENV, OPT_ML)))

    @property
    def config(self) -> Path:
        return self.root / "input" / "config"

    @property
    def hyperparameters(self) -> Path:
        return self.config / "hyperparameters.json"

    @property
    def input_data_config(self) -> Path:
        return self.config / "inputdataconfig.json"

    @property
    def resource_config(self) -> Path:
        return self.config / "resourceconfig.json"

    @property
    def checkpoint_config(self) -> Path:
        return self.config / "checkpointconfig.json"

    @property
    def data(self) -> Path:
        return self.root / "input" / "data"

    def channel(self, name: str) -> Path:
        return self.data / name

    def pipe(self, channel: str, epoch: int) -> Path:
        return self.data / f"{channel}_{epoch}"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def output_data(self) -> Path:
        return self.output / "data"

    @property
    def failure(self) -> Path:
        return self.output / "failure"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def code(self) -> Path:
        return self.root / "code"

    def make_training_tree(self) -> None:
        for folder in (self.config, self.data, self.model, self.output_data, self.checkpoints):
            folder.mkdir(parents=True, exist_ok=True)

NETWORK_INTERFACE = "eth0"
INSTANCE_GROUP = "homogeneousCluster"


def resource_config(current_host: str, hosts: list[str], instance_type: str) -> dict:
    """resourceconfig.json of one host of a homogeneous cluster, as SageMaker writes it."""
    return {
        "current_host": current_host, "hosts": hosts, "network_interface_name": NETWORK_INTERFACE,
        "current_instance_type": instance_type, "current_group_name": INSTANCE_GROUP,
        "instance_groups": [{"instance_group_name": INSTANCE_GROUP, "instance_type": instance_type,
                             "hosts": hosts}],
    }


def checkpoint_config(local_path: str | None, s3_uri: str) -> dict:
    """checkpointconfig.json: where the container writes checkpoints and where they are synced."""
    return {"LocalPath": local_path or f"{OPT_ML}/checkpoints", "S3Uri": s3_uri}


def write_json(path: Path, document) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True))
