"""The body is the one that was signed, checked as it streams in.

A SigV4 signature covers the body through the hash in `x-amz-content-sha256`: a hex SHA-256 that
the body must have, or `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, where each aws-chunked chunk carries a
signature chained from the previous one (the first from the request's own, the "seed"). A pipeline
that streams a large upload instead of holding it feeds the pieces to a `PayloadCheck` as they
arrive and calls `finish()` before it acknowledges the write; memory stays one chunk header.
"""

from __future__ import annotations

import hmac
import re
from hashlib import sha256

from botocore.auth import UNSIGNED_PAYLOAD

from emulator.auth.errors import AuthError

STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_EMPTY_SHA256 = sha256(b"").hexdigest()
_CHUNK_HEADER = re.compile(rb"([0-9a-fA-F]{1,16});chunk-signature=([0-9a-f]{64})")
_MAX_CHUNK_HEADER = 4096


class PayloadCheck:
    """Nothing to check (UNSIGNED-PAYLOAD, presigned URLs, a body whose hash the signature holds)."""

    def feed(self, data: bytes) -> None:
        pass

    def finish(self) -> None:
        pass


class DeclaredHash(PayloadCheck):
    def __init__(self, declared: str):
        self.declared = declared
        self._hash = sha256()

    def feed(self, data: bytes) -> None:
        self._hash.update(data)

    def finish(self) -> None:
        computed = self._hash.hexdigest()
        if computed != self.declared:
            raise AuthError("content-mismatch", extra={"ClientComputedContentSHA256": self.declared,
                                                       "S3ComputedContentSHA256": computed})


class ChunkSignatures(PayloadCheck):
    """aws-chunked framing, `<hex size>;chunk-signature=<sig>\\r\\n<data>\\r\\n` … down to a chunk of
    size 0; each chunk's signature is recomputed with `sign(string_to_sign)` (botocore's key chain).
    Read as a small state machine, so the pieces may split the framing anywhere."""

    def __init__(self, seed_signature: str, timestamp: str, scope: str, sign, trailer: bool = False):
        self._previous, self._sign, self._trailer = seed_signature, sign, trailer
        self._prefix = f"AWS4-HMAC-SHA256-PAYLOAD\n{timestamp}\n{scope}"
        self._pending = bytearray()  # a chunk header, or the CRLF after a chunk's data, not yet whole
        self._state, self._remaining, self._final = self._header, 0, False
        self._hash, self._claimed = sha256(), ""

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self._state is not None:  # None: the final chunk was read; the rest is trailers
            view = self._state(view)

    def finish(self) -> None:
        if self._state is not None:
            raise AuthError("bad-signature", "The aws-chunked body ended before its final, empty chunk.")

    def _header(self, view: memoryview) -> memoryview:
        self._pending += view
        end = self._pending.find(b"\r\n")
        if end < 0:
            if len(self._pending) > _MAX_CHUNK_HEADER:
                raise _malformed()
            return view[len(view):]
        match = _CHUNK_HEADER.fullmatch(bytes(self._pending[:end]))
        if not match:
            raise _malformed()
        rest = self._take(end + 2)
        self._remaining, self._claimed, self._hash = int(match.group(1), 16), match.group(2).decode(), sha256()
        self._final = self._remaining == 0
        self._state = self._data if self._remaining else self._closing
        if self._final and self._trailer:  # trailing checksum headers follow, not a CRLF (their signature is not checked)
            self._check_signature()
            self._state = None
        return rest

    def _data(self, view: memoryview) -> memoryview:
        taken = view[:self._remaining]
        self._hash.update(taken)
        self._remaining -= len(taken)
        if not self._remaining:
            self._state = self._closing
        return view[len(taken):]

    def _closing(self, view: memoryview) -> memoryview:
        self._pending += view
        if len(self._pending) < 2:
            return view[len(view):]
        if bytes(self._pending[:2]) != b"\r\n":
            raise _malformed()
        rest = self._take(2)
        self._check_signature()
        self._state = None if self._final else self._header
        return rest

    def _take(self, length: int) -> memoryview:
        """Drop the first `length` pending bytes; what followed them is handed back to be read."""
        rest = bytes(self._pending[length:])
        self._pending.clear()
        return memoryview(rest)

    def _check_signature(self) -> None:
        string_to_sign = f"{self._prefix}\n{self._previous}\n{_EMPTY_SHA256}\n{self._hash.hexdigest()}"
        expected = self._sign(string_to_sign)
        if not hmac.compare_digest(expected, self._claimed):
            raise AuthError("bad-signature", extra={"StringToSign": string_to_sign, "SignatureProvided": self._claimed})
        self._previous = expected


def payload_check(declared: str | None, presigned: bool, seed_signature: str, timestamp: str, scope: str,
                  sign) -> PayloadCheck:
    """The check a request's x-amz-content-sha256 calls for."""
    if declared is None or declared == UNSIGNED_PAYLOAD or presigned:
        return PayloadCheck()
    if _HEX64.fullmatch(declared):
        return DeclaredHash(declared)
    if declared.startswith(STREAMING_SIGNED):
        return ChunkSignatures(seed_signature, timestamp, scope, sign, trailer=declared.endswith("-TRAILER"))
    return PayloadCheck()


def _malformed() -> AuthError:
    return AuthError("bad-signature", "The aws-chunked body is not framed as <hex size>;chunk-signature=<signature>.")
