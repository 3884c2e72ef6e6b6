"""moto's dispatcher, in-process: every AWS service that is not SageMaker goes here.

moto picks the backend from the Host header or the SigV4 scope, exactly as its own server does.
One correction: moto lists its package folder (a directory scan with a stat per entry: 0.3–3 ms, more under load)
on every request, under the dispatcher's global lock; the list never changes while the process
runs, so it is read once.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def _moto_modules() -> frozenset[str]:
    from moto import backends

    return frozenset(backends.list_of_moto_modules())


def moto_application():
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    class Dispatcher(DomainDispatcherApplication):
        def get_backend_for_host(self, host):
            if host is not None and host in _moto_modules():
                return host  # what moto's own lookup answers, without the folder scan
            return super().get_backend_for_host(host)

    return Dispatcher(create_backend_app)


def put_log_events(account: str, region: str, group: str, stream: str, events: list[dict]) -> None:
    """PutLogEvents straight into moto's CloudWatch Logs (the backend every caller's GetLogEvents
    reads), skipping botocore's serializer and moto's parser: a container that logs every request,
    as access logs do, cost smlocal more CPU in those two than in forwarding the requests."""
    from moto.logs.models import logs_backends

    logs_backends[account][region].put_log_events(group, stream, events)
