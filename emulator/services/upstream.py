"""A small keep-alive HTTP/1.1 client for the router's one job: POST /invocations to a container.

Why not urllib3 (which the health checks still use): on InvokeEndpoint's hot path urllib3 plus
http.client cost ~0.5 ms of CPU per call (header objects, the email-package header parser, timeout
objects, URL normalisation) — more than the rest of smlocal's request path together, and under
the GIL that caps the throughput of every endpoint. This client does what the router needs and no
more: one request per connection at a time, answers framed by Content-Length, chunked transfer
coding, or the end of the connection; 1xx answers skipped; idle connections reused LIFO and
checked for a close by the peer before reuse, as urllib3 does. It costs ~0.1 ms of CPU a call.

Failures keep urllib3's meaning for the router: a connection that cannot be opened or breaks before
the answer is complete raises `UpstreamConnectionError` (a ConnectionError: the instance is marked
unhealthy); no answer within the read timeout raises `UpstreamTimeout`.
"""

from __future__ import annotations

import functools
import select
import socket
import threading
import urllib.parse
from typing import Iterator

CONNECT_TIMEOUT = 5.0
MAX_LINE = 64 * 1024
MAX_HEADERS = 200


class UpstreamConnectionError(ConnectionError):
    """The container could not be reached, or the connection broke before the answer was complete."""


class UpstreamTimeout(TimeoutError):
    """The container did not answer within the read timeout."""


class Reply:
    """A container's answer. `data` is the whole body, unless it was opened with `stream=True`:
    then iterate `stream()` once (the connection goes back to the pool when the body is read)."""

    def __init__(self, status: int, headers: dict[str, str], body: Iterator[bytes], connection: "_Connection",
                 pool: "Upstream"):
        self.status = status
        self.headers = _Headers(headers)
        self._body = body
        self._connection = connection
        self._pool = pool
        self._data: bytes | None = None

    def header(self, name: str) -> str | None:
        """One header's value (`name` in lower case): the same call as the loop's `AsyncReply`."""
        return dict.get(self.headers, name)

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = b"".join(self.stream())
        return self._data

    def stream(self, amount: int = 64 * 1024) -> Iterator[bytes]:
        """The body in pieces as they arrive (at most `amount` bytes each)."""
        done = False
        try:
            for piece in self._body:
                for start in range(0, len(piece), amount):
                    yield piece[start:start + amount]
            done = True
        finally:
            self._release(done)

    def release_conn(self) -> None:
        self._release(False)

    def _release(self, complete: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if complete and connection.reusable:
            self._pool._put(connection)
        else:
            connection.close()


class _Headers(dict):
    """Lower-cased header names; `get` is case-insensitive like urllib3's HTTPHeaderDict."""

    def get(self, name: str, default=None):
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name) -> bool:
        return dict.__contains__(self, name.lower())


class _Connection:
    def __init__(self, host: str, port: int, read_timeout: float):
        try:
            self.sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
        except socket.timeout:
            raise UpstreamConnectionError(f"connecting to {host}:{port} timed out") from None
        except OSError as exc:
            raise UpstreamConnectionError(f"cannot connect to {host}:{port}: {exc}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(read_timeout)
        self.reader = self.sock.makefile("rb")
        self.reusable = True

    def dropped(self) -> bool:
        """Did the peer close (or send something unasked) while the connection sat idle?"""
        try:
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        self.reusable = False
        try:
            self.reader.close()
        finally:
            self.sock.close()


class Upstream:
    """Keep-alive connections to one container (`http://host:port`), at most `maxsize` kept idle."""

    def __init__(self, url: str, maxsize: int = 32):
        self.host, self.port, self._host_header = address(url)
        self.maxsize = maxsize
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def post(self, path: str, body: bytes, headers: dict[str, str], read_timeout: float,
             stream: bool = False) -> Reply:
        request = request_bytes(self._host_header, path, body, headers)
        connection = self._get(read_timeout)
        try:
            if connection.sock.gettimeout() != read_timeout:  # settimeout is a system call
                connection.sock.settimeout(read_timeout)
            connection.sock.sendall(request)
            status, answer_headers, body_pieces = self._read_answer(connection)
        except socket.timeout:
            connection.close()
            raise UpstreamTimeout(f"{self.host}:{self.port} did not answer within {read_timeout:g} s") from None
        except (OSError, ValueError) as exc:
            connection.close()
            raise UpstreamConnectionError(f"the connection to {self.host}:{self.port} broke: {exc}") from None
        reply = Reply(status, answer_headers, body_pieces, connection, self)
        if not stream:
            reply.data  # noqa: B018  (reads the body and hands the connection back)
        return reply

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    # -- connections ----------------------------------------------------------------------------

    def _get(self, read_timeout: float) -> _Connection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return _Connection(self.host, self.port, read_timeout)
            if not connection.dropped():
                return connection
            connection.close()

    def _put(self, connection: _Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.maxsize:
                self._idle.append(connection)
                return
        connection.close()

    # -- the wire -------------------------------------------------------------------------------

    def _read_answer(self, connection: _Connection) -> tuple[int, dict[str, str], Iterator[bytes]]:
        reader = connection.reader
        while True:
            version, status = _status_line(reader)
            headers = _header_block(reader)
            if not 100 <= status < 200 or status == 101:
                break  # 1xx answers are interim: the real one follows
        persistent = _persistent(version, headers)
        if status in (204, 304):
            connection.reusable = persistent
            return status, headers, iter(())
        if "chunked" in headers.get("transfer-encoding", "").lower():
            connection.reusable = persistent
            return status, headers, _chunked(connection)
        length = headers.get("content-length")
        if length is not None:
            try:
                size = int(length.split(",")[0].strip())
            except ValueError:
                raise ValueError(f"bad Content-Length {length!r}") from None
            connection.reusable = persistent
            return status, headers, _sized(connection, size)
        connection.reusable = False  # the body ends when the container closes the connection
        return status, headers, _until_close(connection)


def address(url: str) -> tuple[str, int, bytes]:
    """(host, port, Host header) of a container's `http://host:port`."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    return host, port, f"{host}:{port}".encode("latin-1")


def request_bytes(host_header: bytes, path: str, body: bytes, headers) -> bytes:
    """A POST with its body, in one buffer (one write: no Nagle delay between headers and body).
    `headers` is a dict or a tuple of (name, value) pairs; everything before Content-Length is the
    same for every call with the same headers, so it is built (and checked) once per distinct head."""
    pairs = headers if type(headers) is tuple else tuple(headers.items())
    return b"".join((_request_head(host_header, path, pairs), b"Content-Length: ", b"%d" % len(body),
                     b"\r\n\r\n", body))


@functools.lru_cache(maxsize=256)
def _request_head(host_header: bytes, path: str, headers: tuple) -> bytes:
    """The request line and headers up to Content-Length, ending in CRLF. A value that would inject
    a line raises ValueError (not remembered: raised again on every call).

    The headers are the ones the InvokeEndpoint reference says reach the container (Content-Type,
    Accept, the X-Amzn-SageMaker-* ones) and the Host HTTP/1.1 requires; nothing of smlocal's own.
    Every header costs the container: Python's http.server, for one, spends ~15 µs on each."""
    lines = [b"POST " + path.encode("ascii") + b" HTTP/1.1", b"Host: " + host_header]
    for name, value in headers:
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise ValueError(f"Invalid header {name!r}: {value!r}")
        lines.append(name.encode("latin-1") + b": " + value.encode("latin-1"))
    lines.append(b"")
    return b"\r\n".join(lines)


def _line(reader) -> bytes:
    line = reader.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise ValueError("header line too long")
    return line


def _status_line(reader) -> tuple[str, int]:
    line = _line(reader)
    if not line:
        raise ConnectionResetError("the container closed the connection without answering")
    parts = line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP status line: {line[:100]!r}")
    return parts[0], int(parts[1])


def _header_block(reader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = _line(reader)
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            continue  # not a header line (obsolete folding, junk): http.client skips these too
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    raise ValueError("too many headers")


def _persistent(version: str, headers: dict[str, str]) -> bool:
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def _read_exactly(connection: _Connection, size: int) -> bytes:
    data = connection.reader.read(size)
    if len(data) < size:
        raise UpstreamConnectionError(f"the container closed the connection {size - len(data)} bytes "
                                      "before the end of its answer")
    return data


def _guard(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Socket errors while the body is read mean the same as before it: a broken connection."""
    try:
        yield from pieces
    except socket.timeout:
        raise UpstreamTimeout("the container stopped sending its answer") from None
    except UpstreamConnectionError:
        raise
    except (OSError, ValueError) as exc:
        raise UpstreamConnectionError(f"the connection broke while reading the answer: {exc}") from None


def _sized(connection: _Connection, size: int) -> Iterator[bytes]:
    def pieces():
        remaining = size
        while remaining > 0:
            data = connection.reader.read1(min(remaining, 256 * 1024))
            if not data:
                raise UpstreamConnectionError(f"the container closed the connection {remaining} bytes "
                                              "before the end of its answer")
            remaining -= len(data)
            yield data

    return _guard(pieces())


def _chunked(connection: _Connection) -> Iterator[bytes]:
    def pieces():
        while True:
            line = _line(connection.reader)
            if not line:
                raise UpstreamConnectionError("the container closed the connection inside a chunked answer")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ValueError(f"bad chunk size line {line[:100]!r}") from None
            if size == 0:
                _header_block(connection.reader)  # trailers, ignored
                return
            yield _read_exactly(connection, size)
            if _line(connection.reader) not in (b"\r\n", b"\n"):
                raise ValueError("a chunk does not end with CRLF")

    return _guard(pieces())


def _until_close(connection: _Connection) -> Iterator[bytes]:
    def pieces():
        while True:
            data = connection.reader.read1(256 * 1024)
            if not data:
                return
            yield data

    return _guard(pieces())
