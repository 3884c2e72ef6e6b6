"""The HTTP server on smlocal's one port: stock uvicorn (httptools on uvloop) serving the request
pipeline (emulator/pipeline/), on 127.0.0.1 and on the same port wherever the runtime needs it (the
Docker bridge gateway, so containers reach S3 and the API) — never on 0.0.0.0 unless asked.

uvicorn writes header names in lower case, as S3 itself does (boto3 reads user metadata from
`x-amz-meta-*` as sent), and answers `Expect: 100-continue` only when the application reads the body.

In the main thread uvicorn catches SIGINT/SIGTERM itself, stops, and raises the signal again for the
handler that was there before (`app.serve` installs one that stops smlocal the same way).
"""

from __future__ import annotations

import asyncio
import logging
import socket

import uvicorn
import uvloop

log = logging.getLogger("smlocal")


class HttpServer:
    """Runs (blocking) until `shutdown()` is called from any thread."""

    def __init__(self, app, sockets: list[socket.socket]):
        self.app = app
        self.sockets = sockets
        self._server = uvicorn.Server(uvicorn.Config(
            app.pipeline, loop="none", http="httptools", ws="none", lifespan="off", interface="asgi3",
            log_config=None, access_log=False, server_header=False, proxy_headers=False,
            timeout_keep_alive=300,  # SDK clients keep pooled connections for minutes
            timeout_graceful_shutdown=5))

    def run(self) -> None:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self._serve())

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


def make_server(app, host: str, port: int) -> tuple[HttpServer, str]:
    """Binds `host:port` (and the runtime's addresses on the same port). Returns (server, url)."""
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
    app.set_base_url(url)
    return HttpServer(app, sockets), url


def shutdown_server(server: HttpServer) -> None:
    server.shutdown()
