"""SigV4 verification against requests that botocore itself signed, one per protocol family, and the
refusals AWS answers (unsigned, unknown key, wrong secret, skewed clock, session tokens)."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config as BotoConfig

from emulator.auth import AuthError, Authenticator, KeyRing, issue_container_credentials, protocol_of
from emulator.auth.keys import KeyRecord, iam_lookup, new_key_pair

ROOT_KEY, ROOT_SECRET = "AKIAROOTKEYEXAMPLE01", "rootSecret/0123456789abcdefghijklmnopqrst"
ACCOUNT = "123456789012"
ENDPOINT = "http://127.0.0.1:4580"


class _Empty:
    def stream(self, **kwargs):
        return iter(())

    def read(self, *args):
        return b""


def signed(service, operation, params=None, *, key=ROOT_KEY, secret=ROOT_SECRET, token=None, config=None,
           account=None):
    """(method, raw path, query, headers, body) of the request boto3 sends for this call (naming
    `account` in moto's x-moto-account-id header, as smlocal's own clients do)."""
    client = boto3.client(service, endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id=key,
                          aws_secret_access_key=secret, aws_session_token=token,
                          config=config or BotoConfig(retries={"max_attempts": 1}))
    if account:
        client.meta.events.register("before-sign", lambda request, **kw: request.headers.__setitem__(
            "x-moto-account-id", account))
    captured = []

    def capture(request, **kwargs):
        captured.append(request)
        return AWSResponse(request.url, 200, {}, _Empty())

    client.meta.events.register("before-send", capture)
    try:
        getattr(client, operation)(**(params or {}))
    except Exception:  # the empty answer does not parse; the request is what matters
        pass
    return wire(captured[0])


def wire(request):
    body = request.body
    body = body.read() if hasattr(body, "read") else (body or b"")
    body = body.encode() if isinstance(body, str) else body
    parts = urlsplit(request.url)
    headers = list(request.headers.items())
    if not any(name.lower() == "host" for name, _ in headers):
        headers.append(("Host", parts.netloc))  # what urllib3 adds as it sends
    return request.method, parts.path, parts.query, headers, body


def presigned(url: str):
    parts = urlsplit(url)
    return "GET", parts.path, parts.query, [("host", parts.netloc)], b""


@pytest.fixture
def auth():
    return Authenticator(KeyRing(root=KeyRecord(ROOT_KEY, ROOT_SECRET, ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root")))


def refused(auth, request, protocol):
    with pytest.raises(AuthError) as caught:
        auth.authenticate(*request)
    return caught.value.wire(protocol)


# -- signatures botocore made verify, and say who signed ------------------------------------------

def test_sagemaker_json_call_verifies(auth):
    principal = auth.authenticate(*signed("sagemaker", "list_models", {"NameContains": "a b"}))
    assert (principal.account, principal.access_key, principal.region, principal.service) == (
        ACCOUNT, ROOT_KEY, "us-east-1", "sagemaker")


def test_runtime_rest_json_call_verifies(auth):
    request = signed("sagemaker-runtime", "invoke_endpoint",
                     {"EndpointName": "my-endpoint", "Body": b"1,2,3", "ContentType": "text/csv"})
    assert request[1] == "/endpoints/my-endpoint/invocations"
    assert auth.authenticate(*request).service == "sagemaker"


def test_s3_put_with_signed_payload_verifies(auth):
    request = signed("s3", "put_object", {"Bucket": "bucket", "Key": "dir/a b%c", "Body": b"payload"})
    headers = dict(request[3])
    assert headers["X-Amz-Content-SHA256"] not in ("UNSIGNED-PAYLOAD", "")  # the body's hash is signed
    assert auth.authenticate(*request).service == "s3"


def test_s3_body_swapped_after_signing_is_refused(auth):
    method, path, query, headers, _ = signed("s3", "put_object", {"Bucket": "bucket", "Key": "k", "Body": b"payload"})
    error = refused(auth, (method, path, query, headers, b"another"), "rest-xml")
    assert (error.status, error.code) == (400, "XAmzContentSHA256Mismatch")


@pytest.mark.parametrize("version", ["s3v4", None])  # None: boto3's default for presigning, version 2
def test_s3_presigned_url_verifies(auth, version):
    s3 = boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id=ROOT_KEY,
                      aws_secret_access_key=ROOT_SECRET, config=BotoConfig(signature_version=version))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "bucket", "Key": "a/b c.txt"}, ExpiresIn=60)
    assert ("X-Amz-Signature=" in url) == (version == "s3v4")
    assert auth.authenticate(*presigned(url)).account == ACCOUNT
    tampered = url.replace("a/b%20c.txt", "a/other.txt")
    assert refused(auth, presigned(tampered), "rest-xml").code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("version", ["s3v4", None])
def test_s3_presigned_url_expires(auth, version):
    s3 = boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id=ROOT_KEY,
                      aws_secret_access_key=ROOT_SECRET, config=BotoConfig(signature_version=version))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "bucket", "Key": "k"}, ExpiresIn=60)
    later = Authenticator(auth.keys, clock=lambda: time.time() + 61)
    error = refused(later, presigned(url), "rest-xml")
    assert (error.status, error.code, error.message) == (403, "AccessDenied", "Request has expired")


def test_sts_query_call_verifies(auth):
    assert auth.authenticate(*signed("sts", "get_caller_identity")).service == "sts"


def test_headers_may_arrive_as_asgi_bytes_pairs(auth):
    method, path, query, headers, body = signed("sagemaker", "list_models")
    raw = [(name.lower().encode(), value.encode() if isinstance(value, str) else value) for name, value in headers]
    assert auth.authenticate(method.encode(), path.encode(), query.encode(), raw, body).account == ACCOUNT


# -- refusals, in each service's own dialect -------------------------------------------------------

CALLS = {  # protocol family → a call in it
    "json": ("sagemaker", "list_models", {}),
    "rest-json": ("sagemaker-runtime", "invoke_endpoint", {"EndpointName": "e", "Body": b"x"}),
    "query": ("sts", "get_caller_identity", {}),
    "rest-xml": ("s3", "get_object", {"Bucket": "bucket", "Key": "k"}),
}


@pytest.mark.parametrize("protocol, status, code", [
    ("json", 400, "InvalidSignatureException"), ("rest-json", 403, "InvalidSignatureException"),
    ("query", 403, "SignatureDoesNotMatch"), ("rest-xml", 403, "SignatureDoesNotMatch")])
def test_wrong_secret(auth, protocol, status, code):
    service, operation, params = CALLS[protocol]
    request = signed(service, operation, params, secret="not-the-secret")
    assert protocol_of(request[3], request[1]) == protocol
    error = refused(auth, request, protocol)
    assert (error.status, error.code) == (status, code)
    assert "does not match the signature you provided" in error.message


@pytest.mark.parametrize("protocol, status, code", [
    ("json", 400, "UnrecognizedClientException"), ("rest-json", 403, "UnrecognizedClientException"),
    ("query", 403, "InvalidClientTokenId"), ("rest-xml", 403, "InvalidAccessKeyId")])
def test_unknown_key(auth, protocol, status, code):
    service, operation, params = CALLS[protocol]
    error = refused(auth, signed(service, operation, params, key="AKIANOBODYISSUEDTHIS"), protocol)
    assert (error.status, error.code) == (status, code)


@pytest.mark.parametrize("protocol, status, code", [
    ("json", 400, "MissingAuthenticationTokenException"), ("rest-json", 403, "MissingAuthenticationTokenException"),
    ("query", 403, "MissingAuthenticationToken"), ("rest-xml", 403, "AccessDenied")])
def test_unsigned(auth, protocol, status, code):
    from botocore import UNSIGNED

    service, operation, params = CALLS[protocol]
    request = signed(service, operation, params, config=BotoConfig(signature_version=UNSIGNED))
    assert not any(name.lower() == "authorization" for name, _ in request[3])
    assert protocol_of(request[3], request[1]) == protocol
    error = refused(auth, request, protocol)
    assert (error.status, error.code) == (status, code)


@pytest.mark.parametrize("offset, words", [(-20 * 60, "Signature expired"), (20 * 60, "Signature not yet current")])
def test_skewed_clock(auth, offset, words):
    request = signed("sagemaker", "list_models")
    skewed = Authenticator(auth.keys, clock=lambda: time.time() - offset)
    error = refused(skewed, request, "json")
    assert (error.code, error.status) == ("InvalidSignatureException", 400)
    assert error.message.startswith(words) and "15 min." in error.message
    s3_error = refused(skewed, signed("s3", "get_object", {"Bucket": "b", "Key": "k"}), "rest-xml")
    assert (s3_error.code, s3_error.status) == ("RequestTimeTooSkewed", 403)
    assert s3_error.fields["MaxAllowedSkewMilliseconds"] == 900000


def test_within_the_skew_verifies(auth):
    request = signed("sagemaker", "list_models")
    assert Authenticator(auth.keys, clock=lambda: time.time() + 14 * 60).authenticate(*request)


def test_malformed_authorization_header(auth):
    method, path, query, headers, body = signed("sagemaker", "list_models")
    headers = [(k, "AWS4-HMAC-SHA256 Credential=AKIA/bad") if k.lower() == "authorization" else (k, v)
               for k, v in headers]
    error = refused(auth, (method, path, query, headers, body), "json")
    assert error.code == "IncompleteSignatureException" and "SignedHeaders" in error.message


def test_signature_version_2_is_refused_as_s3_does(auth):
    error = refused(auth, ("GET", "/bucket/k", "", [("host", "h"), ("authorization", "AWS AKIA:c2ln")], b""),
                    "rest-xml")
    assert (error.status, error.code) == (400, "InvalidRequest") and "AWS4-HMAC-SHA256" in error.message


def test_errors_render_as_each_protocol_writes_them():
    status, headers, body = AuthError("unknown-key").render("rest-xml", "req-1")
    assert status == 403 and b"<Code>InvalidAccessKeyId</Code>" in body and b"<RequestId>req-1" in body
    status, headers, body = AuthError("missing").render("json", "req-2")
    assert status == 400 and ("x-amzn-ErrorType", "MissingAuthenticationTokenException") in headers
    status, headers, body = AuthError("bad-signature").render("query", "req-3")
    assert b"<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code>" in body


# -- keys smlocal's IAM issued ---------------------------------------------------------------------

def _iam_user_key(account: str, user: str) -> tuple[str, str]:
    from moto.iam.models import iam_backends

    backend = iam_backends[account]["aws"]
    backend.create_user("us-east-1", user_name=user, path="/", tags=[])
    key = backend.create_access_key(user)
    return key.access_key_id, key.secret_access_key


def test_iam_user_keys_in_any_account_verify_and_say_their_account(auth):
    key, secret = _iam_user_key("210987654321", f"alice-{time.time_ns()}")
    principal = auth.authenticate(*signed("s3", "list_buckets", key=key, secret=secret))
    assert principal.account == "210987654321" and principal.arn.startswith("arn:aws:iam::210987654321:user/alice")


def test_deactivated_iam_key_is_unknown(auth):
    from moto.iam.models import iam_backends

    user = f"bob-{time.time_ns()}"
    key, secret = _iam_user_key(ACCOUNT, user)
    iam_backends[ACCOUNT]["aws"].update_access_key(user, key, "Inactive")
    error = refused(auth, signed("sts", "get_caller_identity", key=key, secret=secret), "query")
    assert error.code == "InvalidClientTokenId"


def test_key_lookup_finds_nothing_for_a_made_up_key():
    assert iam_lookup(new_key_pair()[0]) is None


# -- session tokens --------------------------------------------------------------------------------

def _role_credentials(account="333344445555"):
    return issue_container_credentials(f"arn:aws:iam::{account}:role/SageMakerRole", "job-1")


def test_temporary_key_verifies_with_its_session_token(auth):
    creds = _role_credentials()
    principal = auth.authenticate(*signed("sagemaker", "list_models", key=creds.access_key_id,
                                          secret=creds.secret_access_key, token=creds.session_token))
    assert principal.account == "333344445555"
    assert principal.arn == "arn:aws:sts::333344445555:assumed-role/SageMakerRole/job-1"


@pytest.mark.parametrize("protocol, code", [("json", "UnrecognizedClientException"), ("rest-xml", "InvalidToken"),
                                            ("query", "InvalidClientTokenId")])
def test_temporary_key_without_or_with_a_wrong_token(auth, protocol, code):
    creds = _role_credentials()
    service, operation, params = CALLS[protocol]
    for token in (None, "not-the-token"):
        request = signed(service, operation, params, key=creds.access_key_id, secret=creds.secret_access_key,
                         token=token)
        assert refused(auth, request, protocol).code == code


@pytest.mark.parametrize("protocol, status, code", [("json", 400, "ExpiredTokenException"),
                                                    ("query", 403, "ExpiredToken"), ("rest-xml", 400, "ExpiredToken")])
def test_expired_session(auth, protocol, status, code):
    creds = issue_container_credentials("arn:aws:iam::333344445555:role/Short", "s", duration_seconds=900)
    service, operation, params = CALLS[protocol]
    request = signed(service, operation, params, key=creds.access_key_id, secret=creds.secret_access_key,
                     token=creds.session_token)
    # the clock skew window is 15 minutes, so the signature itself is still current at 14
    later = Authenticator(auth.keys, clock=lambda: time.time() + 901, max_skew=3600)
    error = refused(later, request, protocol)
    assert (error.status, error.code) == (status, code)


def test_a_long_term_key_with_a_token_is_refused(auth):
    error = refused(auth, signed("sagemaker", "list_models", token="whatever"), "json")
    assert error.code == "UnrecognizedClientException"


def test_revoked_container_credentials_stop_verifying(auth):
    from emulator.auth import revoke_container_credentials

    creds = _role_credentials()
    request = signed("sagemaker", "list_models", key=creds.access_key_id, secret=creds.secret_access_key,
                     token=creds.session_token)
    revoke_container_credentials(creds)
    assert refused(auth, request, "json").code == "UnrecognizedClientException"


# -- the account comes from the key, never from a header -------------------------------------------

def test_a_callers_account_header_is_refused(auth):
    error = refused(auth, signed("sts", "get_caller_identity", account="999999999999"), "query")
    assert (error.status, error.code) == (403, "AccessDenied") and "x-moto-account-id" in error.message


def test_an_account_header_naming_the_keys_own_account_is_harmless(auth):
    assert auth.authenticate(*signed("sts", "get_caller_identity", account=ACCOUNT)).account == ACCOUNT


def test_smlocals_internal_key_names_the_account_it_acts_for(auth):
    key, secret = auth.internal_credentials
    principal = auth.authenticate(*signed("s3", "list_buckets", key=key, secret=secret, account="999999999999"))
    assert principal.account == "999999999999" and principal.internal


# -- aws-chunked uploads: AWS's published example (SigV4 streaming, "Example: PUT Object") ----------

EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EXAMPLE_SIGNATURES = ("ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
                      "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
                      "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9")


def _aws_chunked_example(signatures=EXAMPLE_SIGNATURES, second=b"a" * 1024):
    chunks = [(b"a" * 65536, signatures[0]), (second, signatures[1]), (b"", signatures[2])]
    body = b"".join(b"%x;chunk-signature=%s\r\n%s\r\n" % (len(data), sig.encode(), data) for data, sig in chunks)
    headers = [("host", "s3.amazonaws.com"), ("x-amz-date", "20130524T000000Z"),
               ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
               ("authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                                 "aws4_request,SignedHeaders=content-encoding;content-length;host;"
                                 "x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;"
                                 "x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea"
                                 "153f7db9fa80a0a9"),
               ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"), ("content-encoding", "aws-chunked"),
               ("x-amz-decoded-content-length", "66560"), ("content-length", "66824")]
    return "PUT", "/examplebucket/chunkObject.txt", "", headers, body


@pytest.fixture
def example_auth():
    keys = KeyRing(root=KeyRecord("AKIAIOSFODNN7EXAMPLE", EXAMPLE_SECRET, ACCOUNT, "arn:aws:iam::123456789012:root"))
    return Authenticator(keys, clock=lambda: 1369353600.0 + 5)  # 2013-05-24T00:00:05Z


def test_aws_chunked_upload_seed_and_chunk_signatures_verify(example_auth):
    assert example_auth.authenticate(*_aws_chunked_example()).account == ACCOUNT


def test_aws_chunked_upload_with_a_changed_chunk_is_refused(example_auth):
    error = refused(example_auth, _aws_chunked_example(second=b"b" * 1024), "rest-xml")
    assert error.code == "SignatureDoesNotMatch"


# -- other accounts' resources named in a SageMaker call -------------------------------------------

@pytest.mark.parametrize("account, refused_", [("210987654321", True), (ACCOUNT, False)])
def test_sagemaker_arn_of_another_account_is_refused(auth, account, refused_):
    from emulator.auth import Authorizer

    arn = f"arn:aws:sagemaker:us-east-1:{account}:model/m"
    request = signed("sagemaker", "add_tags", {"ResourceArn": arn, "Tags": [{"Key": "k", "Value": "v"}]})
    principal = auth.authenticate(*request)
    if not refused_:
        Authorizer().check(principal, *request)
        return
    with pytest.raises(AuthError) as caught:
        Authorizer().check(principal, *request)
    error = caught.value.wire("json")
    assert (error.status, error.code) == (400, "AccessDeniedException")
    assert f"not authorized to perform: sagemaker:AddTags on resource: \"{arn}\"" in error.message


def test_an_explicit_deny_in_a_bucket_policy_wins():
    from emulator.auth import Principal
    from emulator.auth.access import policy_allows

    caller = Principal("210987654321", "AKIA", "us-east-1", "s3", "arn:aws:iam::210987654321:user/u")
    policy = {"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Deny", "Principal": {"AWS": ["210987654321"]}, "Action": "s3:Get*", "Resource": "*"}]}
    assert not policy_allows(policy, caller, "s3:GetObject", "arn:aws:s3:::b/k")
    assert policy_allows(policy, caller, "s3:PutObject", "arn:aws:s3:::b/k")
    conditional = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*",
                                  "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}
    assert not policy_allows(conditional, caller, "s3:GetObject", "arn:aws:s3:::b/k")


# -- hostile input never crashes: every refusal is an AuthError ------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=80)
_AUTHORIZATION = st.one_of(_TEXT, st.builds(
    lambda cred, signed_, sig: f"AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders={signed_}, Signature={sig}",
    _TEXT, _TEXT, _TEXT))
_QUERY = st.one_of(_TEXT, st.builds(lambda cred, date, exp: f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
                                    f"{cred}&X-Amz-Date={date}&X-Amz-Expires={exp}&X-Amz-SignedHeaders=host"
                                    f"&X-Amz-Signature=00", _TEXT, _TEXT, _TEXT),
                    st.builds(lambda exp: f"AWSAccessKeyId={ROOT_KEY}&Signature=x&Expires={exp}", _TEXT))


@settings(max_examples=300, deadline=None)
@given(authorization=_AUTHORIZATION, date=_TEXT, query=_QUERY, content_sha=_TEXT, token=_TEXT,
       body=st.binary(max_size=64), path=_TEXT)
def test_garbage_is_refused_never_crashes(authorization, date, query, content_sha, token, body, path):
    auth = Authenticator(KeyRing(root=KeyRecord(ROOT_KEY, ROOT_SECRET, ACCOUNT, "arn:aws:iam::1:root")))
    headers = [("host", "h"), ("authorization", authorization), ("x-amz-date", date),
               ("x-amz-content-sha256", content_sha), ("x-amz-security-token", token)]
    for chosen in (headers, headers[:1] + headers[2:]):
        try:
            auth.authenticate("PUT", "/" + path, query, chosen, body)
        except AuthError as error:
            for protocol in ("json", "rest-json", "query", "rest-xml"):
                assert error.render(protocol, "r")[0] in (400, 403)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=200))
def test_a_garbled_aws_chunked_body_is_refused_never_crashes(body):
    keys = KeyRing(root=KeyRecord("AKIAIOSFODNN7EXAMPLE", EXAMPLE_SECRET, ACCOUNT, "arn:aws:iam::1:root"))
    method, path, query, headers, real = _aws_chunked_example()
    with pytest.raises(AuthError):
        Authenticator(keys, clock=lambda: 1369353605.0).authenticate(method, path, query, headers, real[:90] + body)


@pytest.mark.parametrize("name, value", [
    ("x-amz-date", "20241399T999999Z"),          # the right shape, not a date
    ("x-amz-date", "٢٠٢٤٠١٠١T000000Z"),          # digits, but not ASCII ones
    ("host", "[::1"),                              # what urlsplit refuses
    ("host", "lone \udc80 surrogate"),             # not encodable
])
def test_hostile_header_values_are_refused_never_crash(auth, name, value):
    method, path, query, headers, body = signed("sagemaker", "list_models")
    headers = [(k, v) for k, v in headers if k.lower() != name] + [(name, value)]
    with pytest.raises(AuthError):
        auth.authenticate(method, path, query, headers, body)


# -- bodies checked as they stream in --------------------------------------------------------------

def _fed_in_pieces(check, body: bytes, sizes=(1, 7, 2, 90, 65536, 3)):
    offset, turn = 0, 0
    while offset < len(body):
        size = sizes[turn % len(sizes)]
        check.feed(body[offset:offset + size])
        offset, turn = offset + size, turn + 1
    check.finish()


def test_aws_chunked_body_streamed_in_any_pieces_verifies(example_auth):
    method, path, query, headers, body = _aws_chunked_example()
    principal, check = example_auth.authenticate_streaming(method, path, query, headers)
    assert principal.account == ACCOUNT
    _fed_in_pieces(check, body)


@pytest.mark.parametrize("damage", ["changed", "truncated", "unframed"])
def test_a_damaged_streamed_aws_chunked_body_is_refused(example_auth, damage):
    method, path, query, headers, body = _aws_chunked_example()
    body = {"changed": _aws_chunked_example(second=b"b" * 1024)[4], "truncated": body[:-40],
            "unframed": body.replace(b";chunk-signature=", b";chunk-sig=", 1)}[damage]
    _, check = example_auth.authenticate_streaming(method, path, query, headers)
    with pytest.raises(AuthError) as caught:
        _fed_in_pieces(check, body)
    assert caught.value.wire("rest-xml").code == "SignatureDoesNotMatch"


def test_a_streamed_s3_upload_is_checked_against_its_declared_hash(auth):
    method, path, query, headers, body = signed("s3", "put_object", {"Bucket": "b", "Key": "k", "Body": b"x" * 100000})
    _, check = auth.authenticate_streaming(method, path, query, headers)
    _fed_in_pieces(check, body)
    _, check = auth.authenticate_streaming(method, path, query, headers)
    with pytest.raises(AuthError) as caught:
        _fed_in_pieces(check, b"y" * 100000)
    assert caught.value.wire("rest-xml").code == "XAmzContentSHA256Mismatch"


def test_streaming_a_request_whose_signature_covers_an_undeclared_body_is_refused(auth):
    method, path, query, headers, _ = signed("sagemaker", "list_models")
    with pytest.raises(AuthError) as caught:
        auth.authenticate_streaming(method, path, query, headers)
    assert "x-amz-content-sha256" in caught.value.wire("json").message


def test_a_presigned_url_made_with_temporary_credentials_carries_and_needs_its_token(auth):
    creds = _role_credentials()
    s3 = boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id=creds.access_key_id,
                      aws_secret_access_key=creds.secret_access_key, aws_session_token=creds.session_token,
                      config=BotoConfig(signature_version="s3v4"))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=60)
    assert auth.authenticate(*presigned(url)).account == "333344445555"
    without = "&".join(p for p in url.split("&") if not p.startswith("X-Amz-Security-Token="))
    assert refused(auth, presigned(without), "rest-xml").code == "InvalidToken"


def test_a_cbor_refusal_parses_with_botocores_cbor_parser():
    from botocore.parsers import create_parser

    status, headers, body = AuthError("bad-signature").render("smithy-rpc-v2-cbor", "req-4")
    parsed = create_parser("smithy-rpc-v2-cbor").parse(
        {"status_code": status, "headers": {k.lower(): v for k, v in headers}, "body": body}, None)
    assert status == 403 and parsed["Error"]["Code"] == "SignatureDoesNotMatch"
    assert parsed["Error"]["Message"].startswith("The request signature we calculated")
