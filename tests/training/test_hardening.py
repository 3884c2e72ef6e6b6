"""A job can never touch the host: S3 keys, manifest entries and channel names never leave the job's
folder, and nothing a container plants in its /opt/ml (links, FIFOs, a folder swapped for a link)
makes smlocal read or write a host file. Plus the Create-time checks AWS makes (instance counts,
environments, built-in image tags and regions).

The attacks come from tests/training/hostile/train, run as a local process (`--process-image`) and,
where an engine and the example image exist, in a Docker image built from it."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from emulator.testing import LocalServer
from tests.training.conftest import BYO_IMAGE, Stack, byo_image_with_train, runtime_or_skip
from tests.training.helpers import ROLE, bucket, channel, log_lines, model_files, put, start_job, tarball, unique, wait

HOSTILE_BIN = Path(__file__).resolve().parent / "hostile"
HOSTILE_IMAGE = "hostile:latest"
SECRET = b"HOST-ONLY-SECRET"
UP = "../" * 40  # enough to climb from any job folder to /


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    server = LocalServer(data_dir=tmp_path_factory.mktemp("smlocal-hardening"), runtime="process",
                         process_images={HOSTILE_IMAGE: str(HOSTILE_BIN)}, stop_grace_seconds=5)
    with server:
        stack = Stack(server, "process")
        stack.image = HOSTILE_IMAGE
        yield stack


def hostile_docker_image() -> str:
    """smlocal/byo-example with the hostile program as its `train`, tagged by the program's content."""
    return byo_image_with_train(HOSTILE_BIN / "train", "smlocal-test/hostile")


@pytest.fixture(scope="module", params=["process", "docker"])
def planted(request, stack, tmp_path_factory):
    """Where the container-side attacks run: the process runtime, and Docker when it can."""
    if request.param == "process":
        yield stack
        return
    runtime_or_skip("docker", BYO_IMAGE, "hardening")
    image = hostile_docker_image()
    server = LocalServer(data_dir=tmp_path_factory.mktemp("smlocal-hardening-docker"), runtime="docker",
                         stop_grace_seconds=5)
    with server:
        docker_stack = Stack(server, "docker")
        docker_stack.image = image
        yield docker_stack


@pytest.fixture
def secret(tmp_path) -> Path:
    path = tmp_path / "host-only" / "secret.txt"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


def escaping(path: Path) -> str:
    """A relative path that climbs out of wherever it is joined and lands on `path`."""
    return UP + str(path).lstrip("/")


def data(stack, prefix: str = "train/") -> tuple[str, str]:
    b = bucket(stack)
    put(stack, b, f"{prefix}a.csv", b"1,2\n")
    return b, f"s3://{b}/{prefix}"


def completed(stack, action: str, target, checkpoints: str | None = None) -> tuple[str, dict]:
    """A job of the hostile program that must still complete: its bucket and its description."""
    b, uri = data(stack)
    extra = {"CheckpointConfig": {"S3Uri": f"s3://{b}/{checkpoints}"}} if checkpoints else {}
    job = attack(stack, b, uri, action, target, **extra)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return b, job


def every_line(stack, job: dict) -> str:
    """All the job's CloudWatch lines, every host's."""
    return "\n".join(line for lines in log_lines(stack, job["TrainingJobName"]).values() for line in lines)


def attack(stack, b: str, uri: str, action: str, target, **extra) -> dict:
    name = start_job(stack, b, [channel("train", uri)], {"action": action, "target": str(target)}, **extra)
    return wait(stack, name)


# -- S3 keys and manifest entries never leave the channel folder ------------------------------------

def test_a_key_that_climbs_out_of_the_prefix_fails_the_job_and_writes_nothing(stack, tmp_path):
    b, uri = data(stack)
    landing = tmp_path / "escaped.txt"
    put(stack, b, "train/" + escaping(landing), b"planted")
    job = attack(stack, b, uri, "noop", "")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: Data download failed")
    assert "'..'" in job["FailureReason"]
    assert not landing.exists()
    assert "ModelArtifacts" not in job


def test_absolute_and_climbing_manifest_entries_fail_the_job_and_write_nothing(stack, tmp_path):
    for entry in (str(tmp_path / "absolute.txt"), escaping(tmp_path / "climbing.txt")):
        b, _ = data(stack, "data/")
        put(stack, b, "data/" + entry, b"planted")
        put(stack, b, "manifest.json", ('[{"prefix": "s3://%s/data/"}, "a.csv", "%s"]' % (b, entry)).encode())
        name = start_job(stack, b, [channel("train", f"s3://{b}/manifest.json", data_type="ManifestFile")],
                         {"action": "noop"})
        job = wait(stack, name)
        assert job["TrainingJobStatus"] == "Failed", entry
        assert job["FailureReason"].startswith("ClientError: Data download failed"), job["FailureReason"]
    assert not (tmp_path / "absolute.txt").exists()
    assert not (tmp_path / "climbing.txt").exists()


def test_a_checkpoint_key_that_climbs_out_fails_the_job_and_writes_nothing(stack, tmp_path):
    b, uri = data(stack)
    landing = tmp_path / "escaped-checkpoint.txt"
    put(stack, b, "ckpt/" + escaping(landing), b"planted")
    job = attack(stack, b, uri, "noop", "", CheckpointConfig={"S3Uri": f"s3://{b}/ckpt/"})
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: "), job["FailureReason"]
    assert "'..'" in job["FailureReason"]
    assert not landing.exists()


@pytest.mark.parametrize("name", ["..", "."])
def test_channel_names_that_are_path_steps_are_refused_at_create(stack, name):
    b, uri = data(stack)
    with pytest.raises(ClientError) as caught:
        start_job(stack, b, [channel(name, uri)], {"action": "noop"})
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert name in caught.value.response["Error"]["Message"]


def test_model_data_keys_that_climb_out_fail_the_endpoint_and_write_nothing(stack, tmp_path):
    b, _ = data(stack, "model/")
    landing = tmp_path / "escaped-model.txt"
    put(stack, b, "model/" + escaping(landing), b"planted")
    model = unique("m")
    stack.sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": HOSTILE_IMAGE, "ModelDataSource": {"S3DataSource": {
            "S3Uri": f"s3://{b}/model/", "S3DataType": "S3Prefix", "CompressionType": "None"}}})
    config, endpoint = unique("c"), unique("e")
    stack.sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
        "VariantName": "v", "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    stack.sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    for _ in range(300):
        described = stack.sm.describe_endpoint(EndpointName=endpoint)
        if described["EndpointStatus"] != "Creating":
            break
        time.sleep(0.2)
    assert described["EndpointStatus"] == "Failed"
    assert "'..'" in described["FailureReason"]
    assert not landing.exists()


# -- what a container plants in its folders is never followed --------------------------------------

def test_a_checkpoint_linked_to_a_host_file_is_not_uploaded(planted, secret):
    b, job = completed(planted, "link_checkpoint", secret, checkpoints="ckpt/")
    keys = {o["Key"] for o in planted.s3.list_objects_v2(Bucket=b, Prefix="ckpt/").get("Contents", [])}
    assert keys == {"ckpt/ckpt.txt"}
    logged = every_line(planted, job)
    assert "checkpoints/leak" in logged and "checkpoints/fifo" in logged


def test_links_in_the_model_and_output_folders_never_pull_host_files_into_the_tarballs(planted, secret):
    b, job = completed(planted, "link_model", secret)
    assert model_files(planted, job) == {"ok.txt": b"a real model file"}
    output = f"s3://{b}/output/{job['TrainingJobName']}/output/output.tar.gz"
    with pytest.raises(ClientError):
        tarball(planted, output)  # output/data was a link to a host folder: nothing to upload
    logged = every_line(planted, job)
    assert "/opt/ml/model/leak was not uploaded" in logged and "/opt/ml/output/data was not uploaded" in logged


def test_a_model_folder_swapped_for_a_link_uploads_nothing_of_the_host(planted, secret):
    _, job = completed(planted, "replace_model_folder", secret)
    assert SECRET not in b"".join(model_files(planted, job).values())


def test_a_failure_file_linked_to_a_host_file_is_not_read(planted, secret):
    stack = planted
    b, uri = data(stack)
    job = attack(stack, b, uri, "link_failure", secret)
    assert job["TrainingJobStatus"] == "Failed"
    assert "SECRET" not in job["FailureReason"]
    assert job["FailureReason"] == "AlgorithmError: Exit Code: 3"


def test_a_fifo_swapped_for_a_link_never_makes_smlocal_write_a_host_file(planted, secret):
    stack = planted
    b, uri = data(stack)
    job = attack(stack, b, uri, "swap_fifo", secret, mode="Pipe")
    assert secret.read_bytes() == SECRET
    assert job["TrainingJobStatus"] == "Failed"
    assert "FIFO" in job["FailureReason"]


def test_a_missing_image_fails_before_training_and_gets_no_artifacts(planted):
    stack, image = planted, planted.image
    b, uri = data(stack)
    stack.image = f"missing-{uuid.uuid4().hex[:6]}:latest"
    try:
        name = start_job(stack, b, [channel("train", uri)], {"action": "noop"})
    finally:
        stack.image = image
    job = wait(stack, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: ")
    statuses = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert "Training" not in statuses and "Uploading" not in statuses, statuses
    assert "ModelArtifacts" not in job


# -- what AWS refuses at Create ---------------------------------------------------------------------

def test_zero_training_instances_is_a_validation_error(stack):
    b, uri = data(stack)
    with pytest.raises(ClientError) as caught:
        start_job(stack, b, [channel("train", uri)], {"action": "noop"}, instances=0)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "resourceConfig.instanceCount" in caught.value.response["Error"]["Message"]


@pytest.mark.parametrize("value", ["a\x00b", "a\ud800b"])
def test_environment_values_no_process_can_hold_are_refused_at_create(stack, value):
    b, uri = data(stack)
    with pytest.raises(ClientError) as caught:
        start_job(stack, b, [channel("train", uri)], {"action": "noop"}, environment={"BAD": value})
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "BAD" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        stack.sm.create_model(ModelName=unique("m"), ExecutionRoleArn=ROLE,
                              PrimaryContainer={"Image": HOSTILE_IMAGE, "Environment": {"BAD": value}})
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "BAD" in caught.value.response["Error"]["Message"]


@pytest.mark.parametrize("image, words", [
    ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:9.9-1", "Cannot find the requested image"),
    ("382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:7", "Cannot find the requested image"),
    ("246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-xgboost:1.7-1", "Invalid region us-west-2"),
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-image:latest", "Invalid region eu-west-1"),
])
def test_images_aws_never_published_or_from_another_region_are_refused_at_create(stack, image, words):
    b, uri = data(stack)
    stack.image = image
    try:
        with pytest.raises(ClientError) as caught:
            start_job(stack, b, [channel("train", uri)], {"action": "noop"})
    finally:
        stack.image = HOSTILE_IMAGE
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert words in caught.value.response["Error"]["Message"]


def test_models_with_an_image_of_another_region_or_an_unpublished_tag_are_refused(stack):
    for image, words in (("382416733822.dkr.ecr.us-west-2.amazonaws.com/kmeans:1", "Cross region ECR image pulls"),
                         ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:9.9-1",
                          "Cannot find the requested image")):
        with pytest.raises(ClientError) as caught:
            stack.sm.create_model(ModelName=unique("m"), ExecutionRoleArn=ROLE, PrimaryContainer={"Image": image})
        assert caught.value.response["Error"]["Code"] == "ValidationException"
        assert words in caught.value.response["Error"]["Message"]
    published = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    stack.sm.create_model(ModelName=unique("m"), ExecutionRoleArn=ROLE, PrimaryContainer={"Image": published})
