"""The authentication module driven whole, through boto3 over HTTP: a minimal WSGI harness puts
`Authenticator` and `Authorizer` in front of moto's dispatcher (S3, STS, IAM), as the request
pipeline will, so refusals, cross-account reads and container credentials are seen as a client
sees them."""

from __future__ import annotations

import io
import json
import threading
import urllib.error
import urllib.request
import uuid

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from werkzeug.serving import make_server

from emulator.auth import AuthError, Authenticator, Authorizer, KeyRing, issue_container_credentials, protocol_of
from emulator.auth.keys import KeyRecord

ROOT_KEY, ROOT_SECRET = "AKIAHARNESSROOTKEY01", "harnessRootSecret0123456789abcdefghijklm"
ACCOUNT_A, ACCOUNT_B = "123456789012", "444455556666"
NO_RETRY = BotoConfig(retries={"max_attempts": 1, "mode": "standard"})


class AuthHarness:
    """WSGI middleware: authenticate, authorize, then hand moto the request with the verified account."""

    def __init__(self, app, authenticator: Authenticator, authorizer: Authorizer | None):
        self.app, self.authenticator, self.authorizer = app, authenticator, authorizer

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        raw_path, _, query = environ.get("RAW_URI", environ["PATH_INFO"]).partition("?")
        headers = [(name[5:].replace("_", "-").lower(), value) for name, value in environ.items()
                   if name.startswith("HTTP_")]
        headers += [(name.replace("_", "-").lower(), environ[name]) for name in ("CONTENT_TYPE", "CONTENT_LENGTH")
                    if environ.get(name)]
        request = (environ["REQUEST_METHOD"], raw_path, query, headers, body)
        try:
            principal = self.authenticator.authenticate(*request)
            if self.authorizer:
                self.authorizer.check(principal, *request)
        except AuthError as error:
            status, answer_headers, answer = error.render(protocol_of(headers, raw_path, query), uuid.uuid4().hex)
            start_response(f"{status} Refused", answer_headers)
            return [answer]
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = principal.account  # moto serves the verified account, nothing else
        environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)


def _serve(authorizer):
    from emulator.aws.embedded import moto_application

    root = KeyRecord(ROOT_KEY, ROOT_SECRET, ACCOUNT_A, f"arn:aws:iam::{ACCOUNT_A}:root")
    authenticator = Authenticator(KeyRing(root=root))
    server = make_server("127.0.0.1", 0, AuthHarness(moto_application(), authenticator, authorizer), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, authenticator


@pytest.fixture(scope="module")
def harness():
    server, authenticator = _serve(Authorizer())
    yield f"http://127.0.0.1:{server.server_port}", authenticator
    server.shutdown()


def client(harness, service, key=ROOT_KEY, secret=ROOT_SECRET, token=None, config=NO_RETRY, account=None):
    url, _ = harness
    made = boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, aws_session_token=token, config=config)
    if account:  # smlocal's own clients name the account they act for
        made.meta.events.register("before-sign", lambda request, **kw: request.headers.__setitem__(
            "x-moto-account-id", account))
    return made


def internal(harness, service, account):
    key, secret = harness[1].internal_credentials
    return client(harness, service, key, secret, account=account)


def error_of(call) -> tuple[int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["ResponseMetadata"]["HTTPStatusCode"], caught.value.response["Error"]["Code"]


def user_key(harness, account: str) -> tuple[str, str]:
    iam = internal(harness, "iam", account)
    name = f"user-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def test_unsigned_requests_are_refused(harness):
    unsigned = BotoConfig(signature_version=UNSIGNED, retries={"max_attempts": 1})
    assert error_of(lambda: client(harness, "s3", config=unsigned).list_buckets()) == (403, "AccessDenied")
    assert error_of(lambda: client(harness, "sts", config=unsigned).get_caller_identity()) == (
        403, "MissingAuthenticationToken")


def test_wrong_secret_and_unknown_key_are_refused(harness):
    assert error_of(lambda: client(harness, "sts", secret="wrong").get_caller_identity()) == (
        403, "SignatureDoesNotMatch")
    assert error_of(lambda: client(harness, "s3", key="AKIANOBODYISSUEDTHIS").list_buckets()) == (
        403, "InvalidAccessKeyId")


def test_a_key_made_in_smlocals_iam_works_and_names_its_account(harness):
    key, secret = user_key(harness, ACCOUNT_B)
    identity = client(harness, "sts", key, secret).get_caller_identity()
    assert identity["Account"] == ACCOUNT_B and ":user/user-" in identity["Arn"]


def test_an_account_header_from_a_caller_is_refused(harness):
    assert error_of(lambda: client(harness, "s3", account=ACCOUNT_B).list_buckets()) == (403, "AccessDenied")


def _bucket_of_a(harness) -> str:
    s3 = client(harness, "s3")
    bucket = f"a-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="secret.txt", Body=b"account A's data")
    return bucket


def test_another_accounts_object_is_refused(harness):
    bucket = _bucket_of_a(harness)
    key, secret = user_key(harness, ACCOUNT_B)
    s3_b = client(harness, "s3", key, secret)
    assert error_of(lambda: s3_b.get_object(Bucket=bucket, Key="secret.txt")) == (403, "AccessDenied")
    assert error_of(lambda: s3_b.list_objects_v2(Bucket=bucket)) == (403, "AccessDenied")
    assert error_of(lambda: s3_b.put_object(Bucket=bucket, Key="x", Body=b"x")) == (403, "AccessDenied")
    s3_b.create_bucket(Bucket=f"b-{bucket}")
    assert error_of(lambda: s3_b.copy_object(Bucket=f"b-{bucket}", Key="stolen",
                                             CopySource={"Bucket": bucket, "Key": "secret.txt"})) == (403, "AccessDenied")
    assert client(harness, "s3").get_object(Bucket=bucket, Key="secret.txt")["Body"].read() == b"account A's data"


def test_a_bucket_policy_naming_the_other_account_lets_it_read(harness):
    bucket = _bucket_of_a(harness)
    client(harness, "s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"}, "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
    key, secret = user_key(harness, ACCOUNT_B)
    s3_b = client(harness, "s3", key, secret)
    assert s3_b.get_object(Bucket=bucket, Key="secret.txt")["Body"].read() == b"account A's data"
    assert error_of(lambda: s3_b.delete_object(Bucket=bucket, Key="secret.txt")) == (403, "AccessDenied")


def test_container_credentials_reach_their_own_account_only(harness):
    bucket = _bucket_of_a(harness)
    creds = issue_container_credentials(f"arn:aws:iam::{ACCOUNT_B}:role/SageMakerRole", "training-job-1")
    sts = client(harness, "sts", creds.access_key_id, creds.secret_access_key, creds.session_token)
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCOUNT_B}:assumed-role/SageMakerRole/training-job-1"
    s3 = client(harness, "s3", creds.access_key_id, creds.secret_access_key, creds.session_token)
    s3.create_bucket(Bucket=f"own-{bucket}")
    s3.put_object(Bucket=f"own-{bucket}", Key="model.tar.gz", Body=b"model")
    assert error_of(lambda: s3.get_object(Bucket=bucket, Key="secret.txt")) == (403, "AccessDenied")
    without_token = client(harness, "s3", creds.access_key_id, creds.secret_access_key)
    assert error_of(lambda: without_token.list_buckets()) == (400, "InvalidToken")


def test_assuming_another_accounts_role_needs_its_trust(harness):
    iam_a = internal(harness, "iam", ACCOUNT_A)
    trusted, untrusted = f"trusts-b-{uuid.uuid4().hex[:6]}", f"private-{uuid.uuid4().hex[:6]}"
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"},
                            "Action": "sts:AssumeRole"}]}
    iam_a.create_role(RoleName=trusted, AssumeRolePolicyDocument=json.dumps(trust))
    iam_a.create_role(RoleName=untrusted, AssumeRolePolicyDocument=json.dumps(
        {"Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                        "Action": "sts:AssumeRole"}]}))
    key, secret = user_key(harness, ACCOUNT_B)
    sts_b = client(harness, "sts", key, secret)
    assert error_of(lambda: sts_b.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT_A}:role/{untrusted}",
                                              RoleSessionName="session")) == (403, "AccessDenied")
    assert error_of(lambda: sts_b.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT_A}:role/nobody-made-this",
                                              RoleSessionName="session")) == (403, "AccessDenied")
    session = sts_b.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT_A}:role/{trusted}", RoleSessionName="session")["Credentials"]
    assumed = client(harness, "sts", session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"])
    assert assumed.get_caller_identity()["Account"] == ACCOUNT_A


@pytest.mark.parametrize("version", ["s3v4", None])
def test_presigned_urls_work_until_tampered_with(harness, version):
    bucket = _bucket_of_a(harness)
    s3 = client(harness, "s3", config=BotoConfig(signature_version=version))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "secret.txt"}, ExpiresIn=60)
    assert urllib.request.urlopen(url).read() == b"account A's data"
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url.replace("secret.txt", "secret.txx"))
    assert caught.value.code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in caught.value.read()


def test_without_the_authorizer_another_account_reads_the_object():
    """What the Authorizer prevents: moto alone serves any account's bucket to any verified caller."""
    server, authenticator = _serve(None)
    try:
        harness = (f"http://127.0.0.1:{server.server_port}", authenticator)
        bucket = _bucket_of_a(harness)
        key, secret = user_key(harness, ACCOUNT_B)
        assert client(harness, "s3", key, secret).get_object(Bucket=bucket, Key="secret.txt")["Body"].read()
    finally:
        server.shutdown()


def test_smlocals_own_clients_sign_with_the_internal_key_and_act_for_any_account(harness):
    from emulator.aws.clients import AwsClients

    clients = AwsClients(harness[0])
    bucket = f"own-clients-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ClientError):  # the default key is nobody's once signatures are checked
        clients.s3(ACCOUNT_B, "us-east-1").create_bucket(Bucket=bucket)
    clients.use_credentials(*harness[1].internal_credentials)
    clients.s3(ACCOUNT_B, "us-east-1").create_bucket(Bucket=bucket)
    key, secret = user_key(harness, ACCOUNT_B)
    assert bucket in [b["Name"] for b in client(harness, "s3", key, secret).list_buckets()["Buckets"]]


def test_the_aws_cli_works_with_a_key_made_in_smlocals_iam(harness, tmp_path):
    import os
    import shutil
    import subprocess

    if not shutil.which("aws"):
        pytest.skip("the AWS CLI is not installed (pip install awscli)")
    key, secret = user_key(harness, ACCOUNT_B)
    environment = {**os.environ, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
                   "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": harness[0]}
    environment.pop("AWS_SESSION_TOKEN", None)

    def aws(*args, ok=True):
        done = subprocess.run(["aws", *args], capture_output=True, text=True, env=environment, timeout=120)
        assert (done.returncode == 0) == ok, done.stderr
        return done.stdout + done.stderr

    assert ACCOUNT_B in aws("sts", "get-caller-identity")
    bucket = f"cli-{uuid.uuid4().hex[:8]}"
    (tmp_path / "data.csv").write_text("1,2,3\n")
    aws("s3", "mb", f"s3://{bucket}")
    aws("s3", "cp", str(tmp_path / "data.csv"), f"s3://{bucket}/train/data.csv")
    assert aws("s3", "cp", f"s3://{bucket}/train/data.csv", "-") == "1,2,3\n"
    url = aws("s3", "presign", f"s3://{bucket}/train/data.csv").strip()
    assert urllib.request.urlopen(url).read() == b"1,2,3\n"
    environment["AWS_SECRET_ACCESS_KEY"] = "wrong"
    assert "SignatureDoesNotMatch" in aws("s3", "ls", f"s3://{bucket}", ok=False)


@pytest.mark.parametrize("service, call, status, code", [
    ("sagemaker", lambda c: c.list_models(), 400, "InvalidSignatureException"),
    ("sagemaker-runtime", lambda c: c.invoke_endpoint(EndpointName="e", Body=b"1"), 403, "InvalidSignatureException"),
    ("logs", lambda c: c.describe_log_groups(), 400, "InvalidSignatureException"),
    ("iam", lambda c: c.list_users(), 403, "SignatureDoesNotMatch"),
    ("cloudwatch", lambda c: c.list_metrics(), 403, "SignatureDoesNotMatch"),  # CBOR, query-compatible
])
def test_botocore_reads_each_refusal_as_the_services_own_error(harness, service, call, status, code):
    assert error_of(lambda: call(client(harness, service, secret="wrong"))) == (status, code)


def test_botocore_reads_an_unsigned_sagemaker_call_as_missing_authentication(harness):
    unsigned = BotoConfig(signature_version=UNSIGNED, retries={"max_attempts": 1})
    assert error_of(lambda: client(harness, "sagemaker", config=unsigned).list_models()) == (
        400, "MissingAuthenticationTokenException")
