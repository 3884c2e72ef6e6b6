"""The SageMaker training contract, proven with the example bring-your-own image on every runtime
(process always; Docker where an engine answers — and always in CI)."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from tests.training.conftest import runtime_name  # noqa: F401,E402  (used as a fixture)
from tests.training.helpers import (bucket, channel, gz, log_lines, model_files, put, report, start_job, tarball,
                                    unique, wait)

FAST_DNS = {"dns_timeout": "0"}


def dns(stack) -> dict:
    return {} if stack.runtime == "docker" else FAST_DNS


def test_single_host_file_mode_end_to_end(stack):
    b = bucket(stack)
    shas = {f"part-{i}.csv": put(stack, b, f"data/train/part-{i}.csv", f"{i},1,2\n".encode()) for i in range(3)}
    put(stack, b, "data/train/sub/nested.csv", b"9,9\n")
    name = start_job(stack, b, [channel("train", f"s3://{b}/data/train", ContentType="text/csv")],
                     {"epochs": "2", "lr": "0.1", **dns(stack)})
    job = wait(stack, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{b}/output/{name}/output/model.tar.gz"
    assert job["TrainingTimeInSeconds"] >= 0 and job["BillableTimeInSeconds"] == job["TrainingTimeInSeconds"]
    assert job["TrainingEndTime"] >= job["TrainingStartTime"] >= job["CreationTime"]
    seen = report(stack, job)
    assert seen["hyperparameters"] == {"epochs": "2", "lr": "0.1", **dns(stack)}
    assert seen["inputdataconfig"] == {"train": {"ContentType": "text/csv", "TrainingInputMode": "File",
                                                 "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}}
    assert seen["resourceconfig"]["current_host"] == "algo-1" and seen["resourceconfig"]["hosts"] == ["algo-1"]
    assert seen["resourceconfig"]["current_instance_type"] == "ml.m5.large"
    assert seen["env"]["TRAINING_JOB_NAME"] == name and seen["env"]["TRAINING_JOB_ARN"] == job["TrainingJobArn"]
    assert seen["env"]["AWS_REGION"] == "us-east-1" and seen["env"]["USER_FLAG"] == "on"
    assert {k: v["sha256"] for k, v in seen["files"]["train"].items() if "/" not in k} == shas
    assert "sub/nested.csv" in seen["files"]["train"]
    if stack.runtime == "docker":
        assert seen["argv"][1:] == []  and seen["hostname"] == "algo-1"
        assert seen["endpoint"]["reachable"] is True  # containers reach smlocal's S3
    outputs = tarball(stack, f"s3://{b}/output/{name}/output/output.tar.gz")
    assert outputs["out-algo-1.txt"].startswith(b"host=algo-1")
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert metrics == {"train:loss": float(f"{1 / 3:g}"), "train:rmse": float(f"{1 / 6:g}")}
    lines = log_lines(stack, name)
    assert len(lines) == 1
    stream, messages = next(iter(lines.items()))
    assert stream.startswith(f"{name}/algo-1-")
    assert "current host: algo-1" in messages and "train: this line goes to stderr" in messages
    assert f"[2]\ttrain-rmse:{1 / 6:g}" in messages
    assert list(stack.work_dir.glob(f"{name}-*")) == []  # nothing of the job is left behind


def test_three_hosts_sharded_by_s3_key(stack):
    b = bucket(stack)
    keys = [f"shards/part-{i:02d}.csv" for i in range(10)]
    for key in keys:
        put(stack, b, key, key.encode())
    name = start_job(stack, b, [channel("train", f"s3://{b}/shards/", distribution="ShardedByS3Key")],
                     dns(stack), instances=3)
    job = wait(stack, name, timeout=180)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    files = model_files(stack, job)
    reports = {h: json.loads(files[f"report-{h}.json"]) for h in ("algo-1", "algo-2", "algo-3")}
    shares = {h: set(r["files"]["train"]) for h, r in reports.items()}
    assert set().union(*shares.values()) == {k.split("/")[1] for k in keys}
    assert sum(len(s) for s in shares.values()) == 10  # disjoint
    assert sorted(len(s) for s in shares.values()) == [3, 3, 4]
    for host, seen in reports.items():
        assert seen["resourceconfig"]["current_host"] == host
        assert seen["resourceconfig"]["hosts"] == ["algo-1", "algo-2", "algo-3"]
        assert seen["inputdataconfig"]["train"]["S3DistributionType"] == "ShardedByS3Key"
        if stack.runtime == "docker":
            assert all(seen["resolved_hosts"][h] for h in reports), seen["resolved_hosts"]
            assert seen["endpoint"]["reachable"] is True
    assert len(log_lines(stack, name)) == 3


def test_fully_replicated_to_two_hosts(stack):
    b = bucket(stack)
    for i in range(3):
        put(stack, b, f"full/{i}.txt", b"x" * (i + 1))
    name = start_job(stack, b, [channel("train", f"s3://{b}/full/")], dns(stack), instances=2)
    job = wait(stack, name, timeout=180)
    files = model_files(stack, job)
    for host in ("algo-1", "algo-2"):
        assert set(json.loads(files[f"report-{host}.json"])["files"]["train"]) == {"0.txt", "1.txt", "2.txt"}


def test_pipe_mode_two_epochs_with_gzip(stack):
    b = bucket(stack)
    chunks = [f"line {i}\n".encode() * 500 for i in range(3)]
    for i, chunk in enumerate(chunks):
        put(stack, b, f"pipe/part-{i}.txt.gz", gz(chunk))
    expected = hashlib.sha256(b"".join(chunks)).hexdigest()
    name = start_job(stack, b, [channel("train", f"s3://{b}/pipe/", CompressionType="Gzip")],
                     {"epochs": "2", **dns(stack)}, mode="Pipe")
    job = wait(stack, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    seen = report(stack, job)
    assert seen["inputdataconfig"]["train"]["TrainingInputMode"] == "Pipe"
    epochs = seen["pipes"]["train"]
    assert [e["epoch"] for e in epochs] == [0, 1]
    assert all(e["kind"] == "fifo" and e["sha256"] == expected for e in epochs)


def test_pipe_mode_recordio_wrapping(stack):
    b = bucket(stack)
    put(stack, b, "rec/a.bin", b"abc")
    put(stack, b, "rec/b.bin", b"defgh")
    name = start_job(stack, b, [channel("train", f"s3://{b}/rec/", RecordWrapperType="RecordIO")],
                     dns(stack), mode="Pipe")
    job = wait(stack, name)
    magic = (0xCED7230A).to_bytes(4, "little")
    framed = magic + (3).to_bytes(4, "little") + b"abc\0" + magic + (5).to_bytes(4, "little") + b"defgh\0\0\0"
    assert report(stack, job)["pipes"]["train"][0]["sha256"] == hashlib.sha256(framed).hexdigest()


def test_manifest_channel(stack):
    b = bucket(stack)
    for name_ in ("a.csv", "b.csv", "c.csv"):
        put(stack, b, f"mf/data/{name_}", name_.encode())
    manifest = json.dumps([{"prefix": f"s3://{b}/mf/data/"}, "a.csv", "c.csv"]).encode()
    put(stack, b, "mf/train.manifest", manifest)
    name = start_job(stack, b, [channel("train", f"s3://{b}/mf/train.manifest", data_type="ManifestFile")],
                     dns(stack))
    job = wait(stack, name)
    assert set(report(stack, job)["files"]["train"]) == {"a.csv", "c.csv"}


def test_failure_file_becomes_failure_reason_and_artifacts_still_upload(stack):
    b = bucket(stack)
    put(stack, b, "f/x.csv", b"1")
    name = start_job(stack, b, [channel("train", f"s3://{b}/f/")],
                     {"fail_with_reason": "ClientError: the label column is missing", **dns(stack)})
    job = wait(stack, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "ClientError: the label column is missing"
    assert job["SecondaryStatusTransitions"][-1]["Status"] == "Failed"
    assert "report-algo-1.json" in model_files(stack, job)


def test_nonzero_exit_without_failure_file(stack):
    b = bucket(stack)
    put(stack, b, "e/x.csv", b"1")
    job = wait(stack, start_job(stack, b, [channel("train", f"s3://{b}/e/")], {"exit_code": "3", **dns(stack)}))
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"] == "AlgorithmError: Exit Code: 3"


def test_stop_mid_training(stack):
    b = bucket(stack)
    put(stack, b, "s/x.csv", b"1")
    name = start_job(stack, b, [channel("train", f"s3://{b}/s/")], {"sleep_seconds": "60", **dns(stack)})
    wait(stack, name, statuses=("Training",))
    deadline = time.monotonic() + 30
    while not any("sleeping" in m for ms in log_lines(stack, name).values() for m in ms):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    stack.sm.stop_training_job(TrainingJobName=name)
    job = wait(stack, name, statuses=("Stopped", "Failed", "Completed"), timeout=60)
    assert job["TrainingJobStatus"] == "Stopped" and job["SecondaryStatus"] == "Stopped"
    statuses = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert statuses[-3:] == ["Stopping", "Uploading", "Stopped"] or statuses[-2:] == ["Stopping", "Stopped"]
    assert "sigterm-algo-1.txt" in model_files(stack, job)  # SIGTERM came first; its artifacts were kept


def test_max_runtime_exceeded(stack):
    b = bucket(stack)
    put(stack, b, "m/x.csv", b"1")
    name = start_job(stack, b, [channel("train", f"s3://{b}/m/")], {"sleep_seconds": "60", **dns(stack)},
                     stopping={"MaxRuntimeInSeconds": 3})
    job = wait(stack, name, timeout=60)
    assert job["TrainingJobStatus"] == "Stopped"
    assert job["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert "sigterm-algo-1.txt" in model_files(stack, job)


def test_empty_prefix_fails_before_any_host_starts(stack):
    b = bucket(stack)
    name = start_job(stack, b, [channel("train", f"s3://{b}/nothing-here/")])
    job = wait(stack, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(f'ClientError: No S3 objects found under S3 URL "s3://{b}/nothing-here/"')
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == ["Starting", "Failed"]
    assert log_lines(stack, name) == {}


def test_checkpoints_seeded_and_synced(stack):
    b = bucket(stack)
    put(stack, b, "c/x.csv", b"1")
    put(stack, b, "ckpt/previous.txt", b"from an earlier run")
    name = start_job(stack, b, [channel("train", f"s3://{b}/c/")], dns(stack),
                     CheckpointConfig={"S3Uri": f"s3://{b}/ckpt"})
    job = wait(stack, name)
    seen = report(stack, job)
    assert seen["checkpointconfig"] == {"LocalPath": "/opt/ml/checkpoints", "S3Uri": f"s3://{b}/ckpt"}
    assert "previous.txt" in seen["checkpoints_at_start"]
    keys = {o["Key"] for o in stack.s3.list_objects_v2(Bucket=b, Prefix="ckpt/")["Contents"]}
    assert keys == {"ckpt/previous.txt", "ckpt/ckpt-algo-1.txt"}


def test_jobs_beyond_the_limit_wait_in_starting(stack):
    b = bucket(stack)
    put(stack, b, "q/x.csv", b"1")
    limit = stack.server.app.services.training.slots._initial_value
    names = [start_job(stack, b, [channel("train", f"s3://{b}/q/")], {"sleep_seconds": "3", **dns(stack)})
             for _ in range(limit + 1)]
    time.sleep(1.5)
    secondary = [stack.sm.describe_training_job(TrainingJobName=n)["SecondaryStatus"] for n in names]
    assert secondary.count("Starting") >= 1, secondary
    assert all(wait(stack, n, timeout=120)["TrainingJobStatus"] == "Completed" for n in names)


def test_container_entrypoint_and_arguments(stack):
    if stack.runtime != "docker":
        pytest.skip("process runtime: a local program has no image entrypoint to replace")
    b = bucket(stack)
    put(stack, b, "ep/x.csv", b"1")
    name = unique("job")
    stack.sm.create_training_job(
        TrainingJobName=name, RoleArn="arn:aws:iam::123456789012:role/SageMakerRole",
        AlgorithmSpecification={"TrainingImage": stack.image, "TrainingInputMode": "File",
                                "ContainerEntrypoint": ["python3", "/usr/local/bin/train"],
                                "ContainerArguments": ["--extra", "arg"]},
        InputDataConfig=[channel("train", f"s3://{b}/ep/")], OutputDataConfig={"S3OutputPath": f"s3://{b}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1})
    job = wait(stack, name)
    assert report(stack, job)["argv"][1:] == ["--extra", "arg"]


def test_network_isolation(stack):
    if stack.runtime != "docker":
        pytest.skip("process runtime: a local process cannot be cut off from the network; only Docker isolates")
    b = bucket(stack)
    put(stack, b, "n/x.csv", b"1")
    job = wait(stack, start_job(stack, b, [channel("train", f"s3://{b}/n/")], EnableNetworkIsolation=True))
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert report(stack, job)["endpoint"]["reachable"] is False


def test_augmented_manifest_in_pipe_mode_with_recordio(stack):
    b = bucket(stack)
    put(stack, b, "aug/img-1.bin", b"IMAGE-ONE")
    lines = [{"source-ref": f"s3://{b}/aug/img-1.bin", "label": {"class": 1}},
             {"source-ref": f"s3://{b}/aug/img-1.bin", "label": {"class": 0}}]
    put(stack, b, "aug/train.manifest", "\n".join(json.dumps(x) for x in lines).encode())
    name = start_job(stack, b, [channel("train", f"s3://{b}/aug/train.manifest", data_type="AugmentedManifestFile",
                                        source={"AttributeNames": ["source-ref", "label"]},
                                        RecordWrapperType="RecordIO")], dns(stack), mode="Pipe")
    job = wait(stack, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    magic = (0xCED7230A).to_bytes(4, "little")

    def record(payload: bytes) -> bytes:
        return magic + len(payload).to_bytes(4, "little") + payload + b"\0" * ((4 - len(payload) % 4) % 4)

    expected = b"".join(record(p) for p in (b"IMAGE-ONE", b'{"class": 1}', b"IMAGE-ONE", b'{"class": 0}'))
    assert report(stack, job)["pipes"]["train"][0]["sha256"] == hashlib.sha256(expected).hexdigest()


def test_file_and_pipe_channels_in_one_job_and_shuffle(stack):
    b = bucket(stack)
    for i in range(6):
        put(stack, b, f"mix/file/{i}.csv", f"{i}\n".encode())
        put(stack, b, f"mix/pipe/{i}.csv", f"{i}\n".encode())
    name = start_job(stack, b, [
        channel("train", f"s3://{b}/mix/file/", ShuffleConfig={"Seed": 7}),
        channel("stream", f"s3://{b}/mix/pipe/", InputMode="Pipe", ShuffleConfig={"Seed": 7}),
    ], {"epochs": "2", **dns(stack)})
    job = wait(stack, name)
    seen = report(stack, job)
    assert seen["inputdataconfig"]["train"]["TrainingInputMode"] == "File"
    assert seen["inputdataconfig"]["stream"]["TrainingInputMode"] == "Pipe"
    assert len(seen["files"]["train"]) == 6
    epochs = seen["pipes"]["stream"]
    assert [e["bytes"] for e in epochs] == [12, 12]
    assert epochs[0]["sha256"] != epochs[1]["sha256"]  # reshuffled every epoch


def test_gpu_instance_types_are_accepted_and_run(stack):
    b = bucket(stack)
    put(stack, b, "g/x.csv", b"1")
    name = unique("job")
    stack.sm.create_training_job(
        TrainingJobName=name, RoleArn="arn:aws:iam::123456789012:role/SageMakerRole",
        AlgorithmSpecification={"TrainingImage": stack.image, "TrainingInputMode": "File"},
        HyperParameters=dns(stack), InputDataConfig=[channel("train", f"s3://{b}/g/")],
        OutputDataConfig={"S3OutputPath": f"s3://{b}/output"},
        ResourceConfig={"InstanceType": "ml.p3.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1})
    job = wait(stack, name)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert report(stack, job)["resourceconfig"]["current_instance_type"] == "ml.p3.2xlarge"


def test_nothing_of_a_multi_host_job_is_left(stack):
    b = bucket(stack)
    put(stack, b, "l/x.csv", b"1")
    name = start_job(stack, b, [channel("train", f"s3://{b}/l/")], {"exit_code": "1", **dns(stack)}, instances=2)
    assert wait(stack, name, timeout=180)["TrainingJobStatus"] == "Failed"
    assert list(stack.work_dir.glob(f"{name}-*")) == []
    if stack.runtime == "docker":
        import docker
        client = docker.from_env()
        assert client.containers.list(all=True, filters={"label": f"smlocal.job={name}"}) == []
        assert client.networks.list(filters={"label": f"smlocal.job={name}"}) == []


def test_restart_while_a_job_runs_fails_it_with_a_reason(runtime_name, tmp_path):
    from emulator.testing import LocalServer
    from tests.training.conftest import BYO_BIN, BYO_IMAGE, Stack

    images = {BYO_IMAGE: str(BYO_BIN)}
    with LocalServer(data_dir=tmp_path, runtime=runtime_name, process_images=images, stop_grace_seconds=1) as server:
        first = Stack(server, runtime_name)
        b = bucket(first)
        put(first, b, "r/x.csv", b"1")
        name = start_job(first, b, [channel("train", f"s3://{b}/r/")], {"sleep_seconds": "120", **dns(first)})
        wait(first, name, statuses=("Training",))
    with LocalServer(data_dir=tmp_path, runtime=runtime_name, process_images=images) as server:
        job = wait(Stack(server, runtime_name), name, timeout=30)
    assert job["TrainingJobStatus"] == "Failed"
    assert "smlocal was restarted while this job ran" in job["FailureReason"]
