"""InvocationMetrics: flush() is a barrier. Everything recorded before it is in CloudWatch when it
returns, even when the publisher thread took part of the samples a moment earlier (CI once read
2 of 5 Invocations because the test's flush returned while the thread was still sending)."""

import threading
from types import SimpleNamespace

from emulator.services.hosting.metrics import InvocationMetrics


class _SlowCloudWatch:
    """put_metric_data blocks until released the first time, like a send caught mid-way."""

    def __init__(self):
        self.sent: list[float] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def client(self, service, account, region):
        return self

    def put_metric_data(self, Namespace, MetricData):
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(5)
        self.sent.extend(d["Value"] for d in MetricData if d["MetricName"] == "Invocations")


def _record(metrics, n):
    route = SimpleNamespace(account="123456789012", region="us-east-1", endpoint="ep")
    for _ in range(n):
        metrics.record(route, "AllTraffic", 0.002, 0.001, 200)


def test_flush_waits_for_a_send_already_under_way():
    cloudwatch = _SlowCloudWatch()
    metrics = InvocationMetrics(cloudwatch, interval=3600)
    try:
        _record(metrics, 3)
        background = threading.Thread(target=metrics.flush)  # stands in for the publisher thread
        background.start()
        assert cloudwatch.entered.wait(5)
        _record(metrics, 2)
        caller = threading.Thread(target=metrics.flush)
        caller.start()
        caller.join(0.3)
        assert caller.is_alive(), "flush returned while earlier samples were still being sent"
        cloudwatch.release.set()
        caller.join(5)
        background.join(5)
        assert sum(cloudwatch.sent) == 5
    finally:
        cloudwatch.release.set()
        metrics.close()


def test_no_sample_is_lost_between_threads_recording_and_flushing():
    """record() takes no lock (a deque): samples recorded while flushes run all arrive, once."""

    class Counting:
        def __init__(self):
            self.sent = []

        def client(self, service, account, region):
            return self

        def put_metric_data(self, Namespace, MetricData):
            self.sent.extend(d["Value"] for d in MetricData if d["MetricName"] == "Invocations")

    cloudwatch = Counting()
    metrics = InvocationMetrics(cloudwatch, interval=3600)
    try:
        recorders = [threading.Thread(target=_record, args=(metrics, 5000)) for _ in range(4)]
        for thread in recorders:
            thread.start()
        while any(thread.is_alive() for thread in recorders):
            metrics.flush()
        metrics.flush()
        assert sum(cloudwatch.sent) == 20000
    finally:
        metrics.close()
