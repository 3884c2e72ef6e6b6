"""A training log line carries the time it was written, on every host of a multi-host job.

Each host prints a line, sleeps two seconds and prints another: in CloudWatch Logs the two lines of
every host must be about two seconds apart. When the readers started only after the last host had
started, the first lines of the early hosts got the time reading began, and their spans shrank by
however long the later hosts took to start (2.1 to 4.1 s spans for five hosts sleeping 3 s).
"""

from __future__ import annotations

from tests.training.conftest import runtime_name  # noqa: F401  (used as a fixture)
from tests.training.helpers import ROLE, bucket, unique, wait

SLEEP = 2.0
HOSTS = 4
SCRIPT = f"import time; print('begin', flush=True); time.sleep({SLEEP}); print('end', flush=True)"


def test_each_line_of_every_host_carries_the_time_it_was_written(stack):
    b, name = bucket(stack), unique("job")
    stack.sm.create_training_job(
        TrainingJobName=name, RoleArn=ROLE,
        AlgorithmSpecification={"TrainingImage": stack.image, "TrainingInputMode": "File",
                                "ContainerEntrypoint": ["python3", "-c", SCRIPT]},
        OutputDataConfig={"S3OutputPath": f"s3://{b}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": HOSTS, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 120})
    job = wait(stack, name, timeout=180)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    spans = {}
    for stream in stack.logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                                  logStreamNamePrefix=f"{name}/")["logStreams"]:
        events = stack.logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                           logStreamName=stream["logStreamName"])["events"]
        written = {e["message"]: e["timestamp"] / 1000 for e in events}
        spans[stream["logStreamName"]] = round(written["end"] - written["begin"], 2)
    assert len(spans) == HOSTS
    assert all(SLEEP - 0.2 <= span <= SLEEP + 0.6 for span in spans.values()), spans
