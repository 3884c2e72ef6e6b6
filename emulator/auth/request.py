"""The request as the authentication code reads it, whatever server handed it over (ASGI's bytes
pairs, a WSGI environ turned into a dict), and which S3 bucket and key it names."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote


@dataclass(frozen=True)
class HttpRequest:
    """The request as it arrived: the raw (still percent-encoded) path and query, every header
    (lower-cased names, repeated ones kept) and the whole body."""

    method: str
    raw_path: str
    query_string: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None = b""  # None: not read yet (a streamed upload)

    first: dict = field(default_factory=dict, compare=False, repr=False)  # name → its first value

    @classmethod
    def of(cls, method, raw_path, query_string, headers, body: bytes | None = b"") -> "HttpRequest":
        pairs = headers.items() if isinstance(headers, dict) else headers
        decoded = tuple((_text(name).lower(), _text(value)) for name, value in pairs)
        first = {}
        for name, value in decoded:
            first.setdefault(name, value)
        return cls(_text(method).upper(), _text(raw_path), _text(query_string), decoded, body, first)

    def header(self, name: str) -> str | None:
        return self.first.get(name)

    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query_string, keep_blank_values=True)


def _text(value) -> str:
    """Text as HTTP carries it: bytes read as latin-1 (every byte is a character), and str holding
    lone surrogates (no wire gives those) turned into such bytes, so nothing downstream chokes."""
    if isinstance(value, (bytes, bytearray)):
        return value.decode("latin-1")
    value = value or ""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass").decode("latin-1")
    return value


def s3_bucket_and_key(request: HttpRequest) -> tuple[str, str]:
    """The bucket and key moto will serve, by moto's own rule for virtual-hosted bucket names."""
    from moto.s3.responses import S3Response

    host = request.header("host") or ""
    path = request.raw_path.split("?")[0]
    if S3Response().subdomain_based_buckets(_HostOnly(host)):
        return host.split(".")[0], unquote(path.lstrip("/"))
    bucket, _, key = path.lstrip("/").partition("/")
    return unquote(bucket), unquote(key)


class _HostOnly:
    """What moto's subdomain rule reads of a request."""

    def __init__(self, host: str):
        self.headers = {"host": host}
        self.url = f"http://{host}/"
