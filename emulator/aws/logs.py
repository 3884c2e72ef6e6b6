"""CloudWatch Logs streams as SageMaker writes them: training hosts and serving instances.

Training lines go to group /aws/sagemaker/TrainingJobs, stream `<job>/algo-<n>-<epoch seconds>`, in
batches (so a chatty job costs few calls) flushed at least twice a second, so `fit(logs=True)`
tails them live. Streams write through a log writer (AwsClients.log_writer: create if missing, put
events), never a boto3 client, so how the lines reach CloudWatch Logs is decided in one place.
"""

from __future__ import annotations

import threading
import time

GROUP = "/aws/sagemaker/TrainingJobs"
MAX_BATCH = 5000
MAX_EVENT_BYTES = 256 * 1024 - 26


class LogStream:
    """One host's stream; `write` buffers, `flush` sends (thread-safe)."""

    def __init__(self, writer, stream: str, group: str = GROUP):
        self.writer, self.group, self.stream = writer, group, stream
        self._buffer: list[dict] = []
        self._lock = threading.Lock()
        writer.ensure_stream(group, stream)

    def write(self, line: str, at: float | None = None) -> None:
        event = {"timestamp": int((at or time.time()) * 1000), "message": line[:MAX_EVENT_BYTES] or " "}
        with self._lock:
            self._buffer.append(event)
            full = len(self._buffer) >= MAX_BATCH
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._buffer = self._buffer, []
            if not batch:
                return
            self.writer.put_events(self.group, self.stream, batch)


class Flusher(threading.Thread):
    """Flushes a job's streams every `interval` seconds until stopped, then once more."""

    def __init__(self, streams: list[LogStream], interval: float = 0.5):
        super().__init__(name="log-flusher", daemon=True)
        self.streams, self.interval = streams, interval
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self._flush()
        self._flush()

    def _flush(self) -> None:
        for stream in self.streams:
            try:
                stream.flush()
            except Exception:  # logs are best effort: never fail a job for them
                pass

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)
