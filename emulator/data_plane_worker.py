"""A data-plane worker process: answers InvokeEndpoint on connections the main process hands it.

Started by emulator/data_plane.py (`python -m emulator.data_plane_worker ...`), never by hand. It
serves a handed-over connection with smlocal's own HTTP protocol, front and router — the same code
as the main process — over routes mirrored from the main process (services/route_mirror.py).
What it does not serve itself goes to the main process unchanged, over its private port (`_Forward`):
another operation on the same connection, an endpoint it has not heard of, a serverless variant, a
caller whose account it does not know yet (it asks the main process, and knows it next time).

It exits when the main process says stop or goes away (its control socket closes).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import urllib3
import uvloop

from emulator.asgi import Front, is_invocation_scope, send_response, too_large
from emulator.aws import identity
from emulator.gateway import MAX_BODY, new_request_id
from emulator.http_protocol import HttpProtocol
from emulator.http_server import uvicorn_server
from emulator.protocol import restjson
from emulator.providers.runtime import RuntimeProvider
from emulator.services.hosting.route_mirror import MirroredRoutes
from emulator.services.hosting.router import Router

log = logging.getLogger("smlocal.data_plane")

METRICS_SECONDS = 1.0  # how often the calls served here are reported to the main process
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"expect", b"te", b"upgrade"})
_FROM_THIS_SERVER = _HOP_BY_HOP | {b"date", b"server"}  # this process's uvicorn writes its own


class _UnknownAccount(LookupError):
    pass


def _no_lookup(key: str) -> str:
    """Workers never look accounts up themselves (moto's IAM state lives in the main process);
    `Worker.serves` lets through only calls whose account is known."""
    raise _UnknownAccount(key)


class _ClientGone(Exception):
    pass


class _Forward:
    """ASGI: a request passed to the main process as it came, and its answer passed back as it is
    streamed (an event stream chunk by chunk). The blocking client runs in a small thread pool and
    pulls the request body from the connection piece by piece, as the main process reads it."""

    def __init__(self, internal_url: str, threads: int):
        self.pool = urllib3.PoolManager(maxsize=threads, retries=False)
        self.url = internal_url
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="forward")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        target = scope["raw_path"].decode("latin-1") + (f"?{scope['query_string'].decode('latin-1')}"
                                                         if scope["query_string"] else "")
        headers = urllib3.HTTPHeaderDict(
            [(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"] if n not in _HOP_BY_HOP])
        body = None
        if "content-length" in headers or any(n == b"transfer-encoding" for n, _ in scope["headers"]):
            body = _pieces(receive, asyncio.get_running_loop())  # without a length, urllib3 sends it chunked
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(self.executor, functools.partial(
                self.pool.request, scope["method"], self.url + target, body=body, headers=headers,
                preload_content=False, redirect=False, timeout=urllib3.Timeout(connect=5.0, read=None)))
        except _ClientGone:
            return
        except Exception as exc:
            log.warning("forwarding %s %s to the main process failed: %s", scope["method"], target, exc)
            await send({"type": "http.response.start", "status": 502, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"smlocal's main process did not answer"})
            return
        try:
            await send({"type": "http.response.start", "status": response.status, "headers": [
                (n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in response.headers.items()
                if n.lower().encode("latin-1") not in _FROM_THIS_SERVER]})
            chunks = response.stream(64 * 1024, decode_content=False)
            while True:
                chunk = await loop.run_in_executor(self.executor, next, chunks, None)
                if chunk is None:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            response.release_conn()

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.pool.clear()


def _pieces(receive, loop: asyncio.AbstractEventLoop):
    """The request body as the client sends it, for a thread: each piece is asked of the loop."""
    while True:
        message = asyncio.run_coroutine_threadsafe(receive(), loop).result()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        piece = message.get("body", b"")
        if piece:
            yield piece
        if not message.get("more_body"):
            return


class _WorkerFront(Front):
    """InvokeEndpoint through this process's router (`start`, `start_shaped`); everything that
    reaches the ASGI side goes to the main process."""

    def __init__(self, runtime_provider, forward: _Forward):
        self.runtime = runtime_provider
        self.forward = forward

    async def __call__(self, scope, receive, send) -> None:
        declared = _declared_length(scope) if scope["type"] == "http" and is_invocation_scope(scope) else 0
        if declared > MAX_BODY:  # refused here, before a byte of the body is read, as the main process does
            await send_response(send, restjson.serialize_error(too_large(f"of {declared} bytes "), new_request_id()))
        else:
            await self.forward(scope, receive, send)

    def close(self) -> None:
        self.forward.close()


def _declared_length(scope) -> int:
    length = next((v for n, v in scope["headers"] if n == b"content-length"), b"0")
    return int(length) if length.isdigit() else 0


class _WorkerProtocol(HttpProtocol):
    """smlocal's protocol for a handed-over connection: first the bytes the main process read, and
    only the calls this worker can route answered here."""

    worker: Worker = None
    first_bytes = b""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        first, self.first_bytes = self.first_bytes, b""
        if first:
            self.data_received(first)

    def _plain_invocation(self):
        invocation = super()._plain_invocation()
        if invocation is not None and not self.worker.serves(invocation):
            return None  # to the main process, through the ASGI side
        return invocation


class Worker:
    def __init__(self, control: socket.socket, handoff: socket.socket, internal_url: str, number: int,
                 threads: int = 8):
        self.control, self.handoff, self.number = control, handoff, number
        self.router = Router(metrics=self._record)
        self.routes = MirroredRoutes(self.router, self._unhealthy)
        self.front = _WorkerFront(RuntimeProvider(self.router), _Forward(internal_url, threads))
        protocol = type("WorkerHttpProtocol", (_WorkerProtocol,), {"front": self.front, "worker": self})
        self.server = uvicorn_server(self.front, protocol)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._samples: list[list] = []
        self._asked: set[str] = set()  # access keys whose account was asked for
        self._adopting: set[asyncio.Task] = set()
        self._write = threading.Lock()
        identity.use_lookup(_no_lookup)

    def run(self) -> None:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.router.attach_loop(self.loop)
        serving = asyncio.ensure_future(self.server.serve(sockets=[]))
        while not self.server.started:
            if serving.done():
                serving.result()
                return
            await asyncio.sleep(0.01)
        config = self.server.config
        self._protocol = functools.partial(config.http_protocol_class, config=config,
                                           server_state=self.server.server_state, app_state={})
        self.handoff.setblocking(False)
        self.loop.add_reader(self.handoff.fileno(), self._take_connections)
        threading.Thread(target=self._read_control, name="control", daemon=True).start()
        self.loop.call_later(METRICS_SECONDS, self._report)
        self._send({"op": "ready"})
        await serving
        self.front.close()

    # -- connections ------------------------------------------------------------------------------

    def _take_connections(self) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.handoff, 1 << 20, 4)
            except BlockingIOError:
                return
            except OSError:
                self.loop.remove_reader(self.handoff.fileno())
                return
            if not fds:  # the main process closed the channel
                self.loop.remove_reader(self.handoff.fileno())
                return
            for fd in fds[1:]:  # never sent, but never leaked either
                socket.close(fd)
            task = self.loop.create_task(self._adopt(socket.socket(fileno=fds[0]), data))
            self._adopting.add(task)  # the loop holds tasks weakly
            task.add_done_callback(self._adopting.discard)

    async def _adopt(self, sock: socket.socket, first: bytes) -> None:
        def protocol():
            made = self._protocol(_loop=self.loop)
            made.first_bytes = first
            return made

        try:
            await self.loop.connect_accepted_socket(protocol, sock)
        except OSError as exc:  # the client went away meanwhile
            log.info("a handed-over connection could not be served: %s", exc)
            sock.close()

    def serves(self, invocation) -> bool:
        """Whether this worker routes the call itself: its endpoint's route is here, with no
        serverless variant, and the caller's account is known."""
        if invocation.shape is not None:
            path, headers = invocation.shape.path, invocation.shape.headers
            access_key, region = invocation.scope[0], invocation.scope[1]
        else:
            path, headers = invocation.path, invocation.headers
            access_key, region, _ = identity.credential_scope(headers.get("authorization"))
        account = identity.known_account(access_key, headers)
        if account is None:
            self._ask_account(access_key or "AKIAEXAMPLE")
            return False
        return self.routes.servable((account, identity.region_for(region), path.split("/")[2]))

    # -- the main process ------------------------------------------------------------------------

    def _read_control(self) -> None:
        with self.control.makefile("rb") as lines:
            for line in lines:
                message = json.loads(line)
                self.loop.call_soon_threadsafe(self._act, message)
                if message["op"] == "stop":
                    return
        self.loop.call_soon_threadsafe(self._stop)  # the main process went away

    def _act(self, message: dict) -> None:
        op = message["op"]
        if op == "route":
            self.routes.apply(tuple(message["key"]), message["state"])
            if "id" in message:
                self._send({"op": "reply", "id": message["id"]})
        elif op == "inflight":
            self._send({"op": "reply", "id": message["id"], "count": self.routes.inflight(message["ids"])})
        elif op == "account":
            identity.remember_account(message["key"], message["account"])
            self._asked.discard(message["key"])
        elif op == "forget":
            identity.forget_accounts()
            self._asked.clear()
        elif op == "stop":
            self._stop()

    def _stop(self) -> None:
        self._report()
        self.server.should_exit = True

    def _send(self, message: dict) -> None:
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        try:
            with self._write:
                self.control.sendall(data)
        except OSError:  # the main process is gone: `_read_control` stops this worker
            pass

    def _ask_account(self, key: str) -> None:
        if key not in self._asked:
            self._asked.add(key)
            self._send({"op": "account", "key": key})

    def _unhealthy(self, instance_id: str) -> None:
        self._send({"op": "unhealthy", "instance": instance_id})

    def _record(self, route, variant: str, total: float, model: float, status: int) -> None:
        self._samples.append([route.account, route.region, route.endpoint, variant, total, model, status])

    def _report(self) -> None:
        if self._samples:
            samples, self._samples = self._samples, []
            self._send({"op": "metrics", "samples": samples})
        if not self.server.should_exit:
            self.loop.call_later(METRICS_SECONDS, self._report)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator.data_plane_worker")
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--handoff-fd", type=int, required=True)
    parser.add_argument("--internal-url", required=True)
    parser.add_argument("--number", type=int, default=0)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format=f"%(asctime)s %(name)s[worker {args.number}] %(levelname)s %(message)s")
    control = socket.socket(fileno=args.control_fd)
    handoff = socket.socket(fileno=args.handoff_fd)
    Worker(control, handoff, args.internal_url, args.number).run()


if __name__ == "__main__":
    main()
