"""`--instance-limits`: a training host gets its instance type's vCPUs and memory, as on AWS, and a
host killed for its memory fails the job with AWS's FailureReason.

Docker limits CPUs and memory (the container's cgroup says so); the process runtime limits memory
only, as the process's address-space limit.
"""

from __future__ import annotations

import json

import pytest

from emulator.testing import LocalServer
from tests.training.conftest import BYO_BIN, BYO_IMAGE, Stack, runtime_name  # noqa: F401  (a fixture)
from tests.training.helpers import ROLE, bucket, model_files, unique, wait

GiB = 1024 ** 3
# What a host sees of its limits: its cgroup's (v2, else v1) and its address-space rlimit. Passed in
# the environment: an entrypoint's arguments are single lines of at most 256 characters.
REPORT = """
import json, os, resource
def read(*paths):
    return next((open(p).read().split() for p in paths if os.path.exists(p)), [])
cg = '/sys/fs/cgroup/'
cpu = read(cg + 'cpu.max') or read(cg + 'cpu/cpu.cfs_quota_us') + read(cg + 'cpu/cpu.cfs_period_us')
seen = {'memory': read(cg + 'memory.max', cg + 'memory/memory.limit_in_bytes'), 'cpu': cpu,
        'address_space': resource.getrlimit(resource.RLIMIT_AS)[0]}
json.dump(seen, open(os.environ.get('SMLOCAL_OPT_ML', '/opt/ml') + '/model/limits.json', 'w'))
"""
GREEDY = "data = b'x' * (6 * 1024 ** 3); print(len(data))"  # 6 GiB, past an ml.t3.medium's 4 GiB


@pytest.fixture(scope="module")
def limited(runtime_name, tmp_path_factory):  # noqa: F811
    server = LocalServer(data_dir=tmp_path_factory.mktemp(f"limits-{runtime_name}"), runtime=runtime_name,
                         process_images={BYO_IMAGE: str(BYO_BIN)}, instance_limits=True)
    with server:
        yield Stack(server, runtime_name)


def run(stack, script: str, instance_type: str) -> dict:
    b, name = bucket(stack), unique("job")
    stack.sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": stack.image, "TrainingInputMode": "File",
                                "ContainerEntrypoint": ["python3", "-c", "import os; exec(os.environ['SCRIPT'])"]},
        Environment={"SCRIPT": script},
        OutputDataConfig={"S3OutputPath": f"s3://{b}/output"},
        ResourceConfig={"InstanceType": instance_type, "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 120})
    return wait(stack, name, timeout=120)


def test_an_m5_large_host_gets_2_cpus_and_8_gib(limited):
    job = run(limited, REPORT, "ml.m5.large")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    seen = json.loads(model_files(limited, job)["limits.json"])
    if limited.runtime == "docker":
        assert int(seen["memory"][0]) == 8 * GiB
        quota, period = map(int, seen["cpu"])
        assert quota / period == 2  # this machine has 2 CPUs; a larger type gets at most these
    else:
        assert seen["address_space"] == 8 * GiB


def test_a_host_past_its_memory_fails_the_job_as_on_aws(limited):
    job = run(limited, GREEDY, "ml.t3.medium")
    assert job["TrainingJobStatus"] == "Failed"
    if limited.runtime == "docker":
        assert job["FailureReason"] == ("ClientError: Please use an instance type with more memory, or reduce "
                                        "the size of job data processed on an instance.")
    else:  # the allocation is refused: the program fails with its own error (Python's MemoryError)
        assert job["FailureReason"] == "AlgorithmError: Exit Code: 1"
