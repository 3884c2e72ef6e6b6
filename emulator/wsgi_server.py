"""The production WSGI server under smlocal: waitress, on 127.0.0.1 and wherever the runtime needs
(the Docker bridge gateway), with two corrections to match AWS's HTTP behaviour:

* `Expect: 100-continue` with `Content-Length: 0` (boto3's empty PutObject) is complete as it is;
  waitress would wait for a body that never comes.
* S3 user metadata headers (`x-amz-meta-*`) keep S3's lower-case names; waitress capitalises every
  response header, which turns `Metadata={"stage": …}` into `{"Stage": …}` in boto3.
"""

from __future__ import annotations

import logging
import socket

from waitress.channel import HTTPChannel
from waitress.task import WSGITask

log = logging.getLogger("smlocal")


class _Task(WSGITask):
    def build_response_header(self):
        header = super().build_response_header()
        if b"X-Amz-Meta-" not in header:
            return header
        lines = header.split(b"\r\n")
        fixed = [line.split(b":", 1)[0].lower() + b":" + line.split(b":", 1)[1]
                 if line.startswith(b"X-Amz-Meta-") else line for line in lines]
        return b"\r\n".join(fixed)


class _Channel(HTTPChannel):
    task_class = _Task

    def send_continue(self):
        if not self.request.chunked and self.request.content_length == 0:
            self.request.expect_continue = False  # nothing to continue: the request is complete
            return
        super().send_continue()


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def make_server(app, host: str, port: int, threads: int):
    """waitress on `host:port`, and on the same port at every address the runtime needs (the Docker
    bridge gateway, so containers reach S3) — never on 0.0.0.0 unless asked. Returns (server, url)."""
    from waitress.server import create_server

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
    server = create_server(app, sockets=sockets, threads=threads, ident="smlocal", channel_timeout=300,
                           connection_limit=1000, max_request_body_size=5 * 1024**3)
    socket_map = getattr(server, "_map", None) or server.map
    for dispatcher in list(socket_map.values()):
        if hasattr(dispatcher, "channel_class"):
            dispatcher.channel_class = _Channel
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    app.set_base_url(url)
    return server, url


def shutdown_server(server) -> None:
    """Stop waitress even while clients hold keep-alive connections open.

    Closing the listening sockets alone is not enough: waitress's loop runs until its socket map is
    empty, and boto3's pooled connections keep it non-empty.
    """
    socket_map = getattr(server, "_map", None)
    if socket_map is None:
        socket_map = server.map
    for channel in list(socket_map.values()):
        try:
            channel.close()
        except OSError:
            pass
    socket_map.clear()
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
