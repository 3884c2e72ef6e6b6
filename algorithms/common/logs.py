"""Log lines in the shapes SageMaker's built-in algorithms print, so the SDK's metric definitions,
tuning objectives and users' greps match: `[11/28/2026 10:00:00 INFO 140] …`, `#quality_metric:
host=algo-1, train msd <loss>=0.06`, `#progress_metric: …`, `#test_score (algo-1) : ('mse', 0.2)`."""

from __future__ import annotations

import sys
import threading
import time

_HOST = "algo-1"


def set_host(host: str) -> None:
    global _HOST
    _HOST = host


def info(message: str) -> None:
    stamp = time.strftime("%m/%d/%Y %H:%M:%S")
    print(f"[{stamp} INFO {threading.get_ident() % 1000}] {message}", flush=True)


def error(message: str) -> None:
    stamp = time.strftime("%m/%d/%Y %H:%M:%S")
    print(f"[{stamp} ERROR {threading.get_ident() % 1000}] {message}", file=sys.stderr, flush=True)


def quality(channel: str, name: str, value: float, kind: str = "loss", epoch: int | None = None) -> None:
    where = f"epoch={epoch}, " if epoch is not None else ""
    print(f"#quality_metric: host={_HOST}, {where}{channel} {name} <{kind}>={value}", flush=True)


def progress(percent: float) -> None:
    print(f"#progress_metric: host={_HOST}, completed {percent:g} % of epochs", flush=True)


def test_score(name: str, value: float) -> None:
    print(f"#test_score ({_HOST}) : ('{name}', {value})", flush=True)


def throughput(records_per_second: float) -> None:
    print(f"#throughput_metric: host={_HOST}, train throughput={records_per_second:.1f} records/second", flush=True)
