"""Gathering across hosts: every host sends its share to algo-1, which trains on all of it.

SageMaker's first-party algorithms combine shards through a parameter server; here the simplest
exact equivalent is used: algo-1 receives the other hosts' arrays (or partial results) over TCP
and the model reflects all the data. Hosts find algo-1 by name (Docker networks) or through
$SMLOCAL_HOST_ADDRESSES (local processes); the port is $SMLOCAL_COORDINATOR_PORT.
"""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import time

import numpy as np

from algorithms.common import logs

DEFAULT_PORT = 7777
CONNECT_SECONDS = 120.0


def _address(host: str) -> str:
    table = json.loads(os.environ.get("SMLOCAL_HOST_ADDRESSES", "{}") or "{}")
    return table.get(host, host)


def _port() -> int:
    return int(os.environ.get("SMLOCAL_COORDINATOR_PORT", DEFAULT_PORT))


def _pack(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _unpack(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError("peer closed the connection early")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def gather(arrays: dict[str, np.ndarray], hosts: list[str], current: str) -> list[dict[str, np.ndarray]] | None:
    """On the first host: every host's arrays (its own first). Elsewhere: send, return None."""
    if len(hosts) == 1:
        return [arrays]
    leader = hosts[0]
    if current != leader:
        _send(_pack(arrays), _address(leader), _port())
        return None
    return [arrays] + _receive(len(hosts) - 1)


def _send(payload: bytes, address: str, port: int) -> None:
    deadline = time.monotonic() + CONNECT_SECONDS
    while True:
        try:
            with socket.create_connection((address, port), timeout=30) as sock:
                sock.sendall(struct.pack(">Q", len(payload)) + payload)
                sock.recv(1)  # the leader's acknowledgement
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _receive(count: int) -> list[dict[str, np.ndarray]]:
    results = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        local = bool(os.environ.get("SMLOCAL_HOST_ADDRESSES"))  # local processes share this machine
        server.bind(("127.0.0.1" if local else "0.0.0.0", _port()))
        server.listen(count)
        server.settimeout(CONNECT_SECONDS)
        while len(results) < count:
            conn, peer = server.accept()
            with conn:
                size = struct.unpack(">Q", _recv_exact(conn, 8))[0]
                results.append(_unpack(_recv_exact(conn, size)))
                conn.sendall(b"k")
            logs.info(f"received a share from {peer[0]} ({len(results)}/{count})")
    return results
