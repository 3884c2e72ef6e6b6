"""Endpoint invocation metrics in CloudWatch (namespace AWS/SageMaker), as AWS publishes them:
Invocations, Invocation4XXErrors, Invocation5XXErrors, ModelLatency and OverheadLatency (in
microseconds), per EndpointName and VariantName.

The router only appends a sample (cheap, on the hot path); a publisher thread aggregates and sends
them every few seconds.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict, deque

log = logging.getLogger("smlocal.metrics")
NAMESPACE = "AWS/SageMaker"


class InvocationMetrics:
    def __init__(self, clients, interval: float = 5.0):
        self.clients = clients
        self.interval = interval
        # record() is on the hot path: a deque's append and popleft are atomic, so it takes no lock
        self._samples: deque[tuple] = deque()
        # One flush at a time, so that flush() returns only once every sample recorded before it is
        # in CloudWatch, even when the publisher thread took some of them a moment earlier.
        self._flushing = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)
        self._thread.start()

    def record(self, route, variant: str, total: float, model: float, status: int) -> None:
        self._samples.append((route.account, route.region, route.endpoint, variant, total, model, status))

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        with self._flushing:
            pop = self._samples.popleft
            self._send([pop() for _ in range(len(self._samples))])  # those recorded later wait

    def _send(self, samples: list[tuple]) -> None:
        groups: dict[tuple, list] = defaultdict(list)
        for account, region, endpoint, variant, total, model, status in samples:
            groups[(account, region, endpoint, variant)].append((total, model, status))
        for (account, region, endpoint, variant), rows in groups.items():
            try:
                self._publish(account, region, endpoint, variant, rows)
            except Exception as exc:  # metrics are best effort; a failed send never breaks serving
                log.warning("publishing metrics for %s failed: %s", endpoint, exc)

    def _publish(self, account, region, endpoint, variant, rows) -> None:
        dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
        ok = [r for r in rows if r[2] < 400]
        data = [
            _count("Invocations", len(ok), dims),
            _count("Invocation4XXErrors", sum(1 for r in rows if 400 <= r[2] < 500), dims),
            _count("Invocation5XXErrors", sum(1 for r in rows if r[2] >= 500), dims),
        ]
        if ok:
            data.append(_stats("ModelLatency", [r[1] * 1e6 for r in ok], dims))
            data.append(_stats("OverheadLatency", [max(0.0, r[0] - r[1]) * 1e6 for r in ok], dims))
        self.clients.client("cloudwatch", account, region).put_metric_data(Namespace=NAMESPACE, MetricData=data)

    def close(self) -> None:
        """Stop publishing; samples not yet sent are dropped (the server is going away)."""
        self._done.set()
        self._thread.join(timeout=5)


def _count(name: str, value: int, dims) -> dict:
    return {"MetricName": name, "Dimensions": dims, "Value": float(value), "Unit": "Count"}


def _stats(name: str, values: list[float], dims) -> dict:
    return {"MetricName": name, "Dimensions": dims, "Unit": "Microseconds",
            "StatisticValues": {"SampleCount": float(len(values)), "Sum": sum(values),
                                "Minimum": min(values), "Maximum": max(values)}}
