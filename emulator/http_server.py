"""The HTTP server on smlocal's one port: uvicorn (httptools on uvloop) serving `asgi.Front` through
smlocal's protocol (emulator/http_protocol.py, which answers InvokeEndpoint on the connection), on
127.0.0.1 and on the same port wherever the runtime needs it (the Docker bridge gateway, so
containers reach S3 and the API) — never on 0.0.0.0 unless asked.

uvicorn writes header names in lower case, as S3 itself does (boto3 reads user metadata from
`x-amz-meta-*` as sent), and answers `Expect: 100-continue` only when the application reads the body.

With data-plane workers (emulator/data_plane.py) the server also listens on a private port on
127.0.0.1, where the workers forward what they do not serve themselves; connections there are never
handed over. The workers start with the server and stop with it.

smlocal, not uvicorn, owns SIGINT/SIGTERM: `serve()` stops the server and closes the application,
then exits normally (uvicorn would re-raise the signal after its own shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import uvicorn
import uvloop

from emulator.asgi import Front
from emulator.data_plane import DataPlane
from emulator.http_protocol import protocol_for

log = logging.getLogger("smlocal")


class _Uvicorn(uvicorn.Server):
    def capture_signals(self):
        return contextlib.nullcontext()


def uvicorn_server(front, protocol) -> uvicorn.Server:
    """uvicorn serving `front` through `protocol` (emulator/http_protocol.py), without uvicorn's
    own signal handling; the main process and data-plane workers alike."""
    return _Uvicorn(uvicorn.Config(
        front, loop="none", http=protocol, ws="none", lifespan="off", interface="asgi3", log_config=None,
        access_log=False, server_header=False, proxy_headers=False,
        timeout_keep_alive=300,  # SDK clients keep pooled connections for minutes
        timeout_graceful_shutdown=5))


class HttpServer:
    """Runs (blocking) until `shutdown()` is called from any thread."""

    def __init__(self, app, sockets: list[socket.socket], threads: int, data_plane: DataPlane | None = None):
        self.app = app
        self.sockets = sockets
        self.data_plane = data_plane
        self.front = Front(app, app.runtime_provider, threads)
        self._server = uvicorn_server(self.front, protocol_for(self.front, data_plane))

    def run(self) -> None:
        if self.data_plane is not None:
            self.data_plane.start()
        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(self._serve())
        finally:
            if self.data_plane is not None:
                self.data_plane.close()
            self.front.close()

    async def _serve(self) -> None:
        self.app.router.attach_loop(asyncio.get_running_loop())
        await self._server.serve(sockets=self.sockets)

    def shutdown(self) -> None:
        self._server.should_exit = True  # polled by uvicorn's main loop every 0.1 s


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def make_server(app, host: str, port: int, threads: int, data_plane_workers: int = 0) -> tuple[HttpServer, str]:
    """Binds `host:port` (and the runtime's addresses on the same port, and with data-plane workers
    a private port on 127.0.0.1 for what they forward). Returns (server, url)."""
    primary = _listen(host, port)
    port = primary.getsockname()[1]
    sockets = [primary]
    for extra in app.runtime.listen_addresses():
        if extra in (host, "0.0.0.0"):
            continue
        try:
            sockets.append(_listen(extra, port))
        except OSError as exc:
            log.warning("cannot also listen on %s:%s (%s); containers will not reach S3", extra, port, exc)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    data_plane = None
    if data_plane_workers > 0:
        internal = _listen("127.0.0.1", 0)
        sockets.append(internal)
        data_plane = DataPlane(app.router, app.metrics.record, data_plane_workers, port,
                               f"http://127.0.0.1:{internal.getsockname()[1]}",
                               logging.getLevelName(logging.getLogger().getEffectiveLevel()))
        app.data_plane = data_plane
    app.set_base_url(url)
    return HttpServer(app, sockets, threads, data_plane), url


def shutdown_server(server: HttpServer) -> None:
    server.shutdown()
