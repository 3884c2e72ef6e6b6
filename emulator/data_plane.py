"""Data-plane workers: processes beside the main one that answer InvokeEndpoint on their own event
loops, so that a busy endpoint is not held to what one Python thread can forward.

Why: under load every call through smlocal waits on its one event-loop thread. On a small machine
that thread works through bursts alone while the clients and the container wait, and the CPUs stand
idle 10-13 % of the time; a second process serving half the connections uses that time.

How, in the main process (this module):
* The main process alone accepts connections on smlocal's port. A connection whose first request is
  `POST /endpoints/<name>/invocations` may be handed to a worker (in turn with the main process
  itself): its socket and the bytes already read go over a Unix socket (SCM_RIGHTS), and the main
  process closes its copy. Every other connection — the control plane, S3, Logs — never leaves it.
* The router's routes are mirrored (`Router.mirrors`): a worker is sent every published or
  withdrawn route and has applied it before `publish` returns, so a weight update or a withdrawn
  endpoint holds for the next call wherever it lands. Draining an instance waits for the workers'
  calls on it too (`inflight`).
* Workers send back what only the main process keeps: invocation metrics (in batches), instances
  they could not reach (for the health monitor), and questions about accounts (moto's IAM state).
* A worker that does not serve a request itself — another operation on a handed-over connection,
  an endpoint it has not heard of, a serverless variant — forwards it to the main process over a
  private port on 127.0.0.1 (opened by `make_server`, emulator/http_server.py), which never hands
  connections over.

The worker's side is emulator/data_plane_worker.py; the message framing is one JSON object per line
on a socket pair per worker.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from emulator.aws import identity
from emulator.services.hosting.route_mirror import route_state

log = logging.getLogger("smlocal.data_plane")

REPLY_SECONDS = 5.0  # how long a route change or a question waits for a worker's answer
RESTART_PAUSE_MAX = 60.0
FIRST_BYTES = 256 * 1024  # a connection whose first read is larger stays in the main process
_INVOCATION_PREFIX = b"POST /endpoints/"


def default_workers() -> int:
    """One worker where there is a second CPU to run it on."""
    return 1 if (os.cpu_count() or 1) >= 2 else 0


@dataclass
class _MetricsRoute:
    """What `InvocationMetrics.record` reads of a route."""

    account: str
    region: str
    endpoint: str


class _Worker:
    """One worker process and its two channels."""

    def __init__(self, number: int):
        self.number = number
        self.popen: subprocess.Popen | None = None
        self.control: socket.socket | None = None
        self.handoff: socket.socket | None = None
        self.ready = False
        self.restarts = 0  # in a row, without saying ready in between
        self.connections = 0  # connections handed over
        self.invocations = 0  # calls it reported in its metrics
        self._write = threading.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, list] = {}  # request id → [Event, reply]

    def send(self, message: dict) -> None:
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        with self._write:
            self.control.sendall(data)

    def ask(self, message: dict) -> dict | None:
        """Send and wait for the reply with the same id; None if the worker does not answer."""
        request_id = next(self._ids)
        waiter = [threading.Event(), None]
        self._waiting[request_id] = waiter
        try:
            self.send({**message, "id": request_id})
            waiter[0].wait(REPLY_SECONDS)
        except OSError:
            pass
        finally:
            self._waiting.pop(request_id, None)
        return waiter[1]

    def replied(self, message: dict) -> None:
        waiter = self._waiting.get(message.get("id"))
        if waiter is not None:
            waiter[1] = message
            waiter[0].set()

    def gone(self) -> None:
        self.ready = False
        for waiter in list(self._waiting.values()):
            waiter[0].set()


class DataPlane:
    """The main process's side: starts the workers, hands connections over, mirrors the routes."""

    def __init__(self, router, metrics_record, workers: int, public_port: int, internal_url: str,
                 log_level: str = "WARNING"):
        self.router = router
        self.metrics_record = metrics_record
        self.public_port = public_port
        self.internal_url = internal_url
        self.log_level = log_level
        self.workers = [_Worker(n) for n in range(workers)]
        self._turns = itertools.count()
        # The main process takes its turn with the workers; tests set this False to send every
        # InvokeEndpoint connection to a worker.
        self.main_takes_turns = True
        self._routes_lock = threading.Lock()  # a route change reaches every worker in order
        self._closing = False

    # -- life -----------------------------------------------------------------------------------

    def start(self) -> None:
        self.router.mirrors.append(self)
        identity.on_forget(self._forget_accounts)
        for worker in self.workers:
            self._spawn(worker)

    def _spawn(self, worker: _Worker) -> None:
        control, their_control = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        handoff, their_handoff = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        handoff.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * FIRST_BYTES)
        handoff.setblocking(False)  # the event loop sends: a worker that cannot take more keeps nothing waiting
        worker.control, worker.handoff = control, handoff
        worker.popen = subprocess.Popen(
            [sys.executable, "-m", "emulator.data_plane_worker", "--control-fd", str(their_control.fileno()),
             "--handoff-fd", str(their_handoff.fileno()), "--internal-url", self.internal_url,
             "--number", str(worker.number), "--log-level", self.log_level],
            pass_fds=(their_control.fileno(), their_handoff.fileno()), stdin=subprocess.DEVNULL)
        their_control.close()
        their_handoff.close()
        threading.Thread(target=self._read, args=(worker,), name=f"data-plane-{worker.number}", daemon=True).start()

    def close(self) -> None:
        """Stop the workers (each finishes the calls it has in flight) and stop mirroring."""
        self._closing = True
        if self in self.router.mirrors:
            self.router.mirrors.remove(self)
        identity.off_forget(self._forget_accounts)
        for worker in self.workers:
            worker.ready = False
            try:
                worker.send({"op": "stop"})
            except OSError:
                pass
        for worker in self.workers:
            if worker.popen is None:
                continue
            try:
                worker.popen.wait(timeout=8)
            except subprocess.TimeoutExpired:
                worker.popen.kill()
                worker.popen.wait()
            for channel in (worker.control, worker.handoff):
                channel.close()

    def status(self) -> list[dict]:
        """For smlocal's health check: each worker and what it has served."""
        return [{"pid": w.popen.pid if w.popen else None, "ready": w.ready, "connections": w.connections,
                 "invocations": w.invocations} for w in self.workers]

    # -- connections (on the event loop) -------------------------------------------------------------

    def hand_off(self, transport, data: bytes) -> bool:
        """Called with a connection's first read: hand it to the next worker in turn if it starts an
        InvokeEndpoint. True when a worker has it (the caller then forgets the connection)."""
        if not data.startswith(_INVOCATION_PREFIX) or len(data) > FIRST_BYTES:
            return False
        line_end = data.find(b"\r\n")
        if line_end < 0 or b"/invocations " not in data[:line_end]:
            return False
        sockname = transport.get_extra_info("sockname")
        if not sockname or sockname[1] != self.public_port:  # a worker's own forwards stay here
            return False
        turn = next(self._turns) % (len(self.workers) + self.main_takes_turns) - self.main_takes_turns
        if turn < 0:  # the main process's turn
            return False
        worker = self.workers[turn]
        if not worker.ready:
            return False
        sock = transport.get_extra_info("socket")
        try:
            socket.send_fds(worker.handoff, [data], [sock.fileno()])
        except OSError:  # the worker is busy or gone: serve it here
            return False
        worker.connections += 1
        transport.abort()  # closes this process's descriptor only; the worker's stays open
        return True

    # -- the router's mirror ------------------------------------------------------------------------

    def changed(self, key: tuple, route) -> None:
        """A route was published or withdrawn: every ready worker applies it before this returns."""
        message = {"op": "route", "key": list(key), "state": route_state(route) if route is not None else None}
        with self._routes_lock:
            for worker in self.workers:
                if worker.ready and worker.ask(message) is None:
                    log.warning("data-plane worker %s did not apply a route change in time", worker.number)

    def inflight(self, ids: list[str]) -> int:
        total = 0
        for worker in self.workers:
            if worker.ready:
                reply = worker.ask({"op": "inflight", "ids": ids})
                total += reply["count"] if reply else 0
        return total

    def _forget_accounts(self) -> None:
        for worker in self.workers:
            if worker.ready:
                try:
                    worker.send({"op": "forget"})
                except OSError:
                    pass

    # -- what workers say ---------------------------------------------------------------------------

    def _read(self, worker: _Worker) -> None:
        with worker.control.makefile("rb") as lines:
            for line in lines:
                try:
                    self._dispatch(worker, json.loads(line))
                except Exception:
                    log.exception("data-plane worker %s: cannot act on %r", worker.number, line[:200])
        worker.gone()
        if not self._closing:
            code = worker.popen.wait()
            worker.restarts += 1
            pause = min(RESTART_PAUSE_MAX, 2.0 ** (worker.restarts - 1))  # 1 s, 2 s, 4 s ... if it keeps failing
            log.error("data-plane worker %s exited (code %s); starting another in %g s", worker.number, code, pause)
            worker.control.close()
            worker.handoff.close()
            time.sleep(pause)
            if not self._closing:
                self._spawn(worker)

    def _dispatch(self, worker: _Worker, message: dict) -> None:
        op = message["op"]
        if op == "ready":
            with self._routes_lock:  # every route as it stands, then each change as it comes
                for key, route in list(self.router.routes.items()):
                    worker.send({"op": "route", "key": list(key), "state": route_state(route)})
                worker.ready = True
                worker.restarts = 0
            log.info("data-plane worker %s (pid %s) serving", worker.number, worker.popen.pid)
        elif op == "reply":
            worker.replied(message)
        elif op == "metrics":
            for account, region, endpoint, variant, total, model, status in message["samples"]:
                self.metrics_record(_MetricsRoute(account, region, endpoint), variant, total, model, status)
            worker.invocations += len(message["samples"])
        elif op == "unhealthy":
            instance = self.router.instance(message["instance"])
            if instance is not None:
                instance.healthy = False  # the health monitor replaces it
        elif op == "account":
            key = message["key"]
            worker.send({"op": "account", "key": key, "account": identity.account_for(key, {})})
        else:
            log.warning("data-plane worker %s said %r", worker.number, op)
