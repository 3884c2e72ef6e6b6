"""moto's dispatcher, in-process: every AWS service that is not SageMaker goes here.

moto picks the backend from the Host header or the SigV4 scope, exactly as its own server does.
Two corrections:
* moto lists its package folder (a directory scan with a stat per entry: 0.3–3 ms, more under load)
  on every request, under the dispatcher's global lock; the list never changes while the process
  runs, so it is read once.
* moto runs its Flask apps in debug mode, where Flask gives every request without a form a class
  of its own whose method refers back to the request (flask.debughelpers): a reference cycle, so
  each request and its whole body (a 256 MB PutObject: 256 MB) stayed resident until the next
  cyclic collection, which only the count of new objects triggers, not their size. Our apps run
  without debug mode and still propagate exceptions, as debug mode did.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def _moto_modules() -> frozenset[str]:
    from moto import backends

    return frozenset(backends.list_of_moto_modules())


def moto_application():
    """moto's dispatcher behind `s3_requests.ExactTarget`, with S3's limits and errors installed."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from emulator.aws import s3_requests

    class Dispatcher(DomainDispatcherApplication):
        def get_backend_for_host(self, host):
            if host is not None and host in _moto_modules():
                return host  # what moto's own lookup answers, without the folder scan
            return super().get_backend_for_host(host)

    s3_requests.install()
    return s3_requests.ExactTarget(Dispatcher(functools.partial(_backend_app, create_backend_app)))


def _backend_app(create_backend_app, service: str):
    """moto's Flask app for one service, out of debug mode (see the module docstring)."""
    app = create_backend_app(service)
    app.debug = False
    app.config["PROPAGATE_EXCEPTIONS"] = True  # errors reach the WSGI layers around moto, as before
    return app


class LogWriter:
    """CloudWatch Logs writes of one account and region, straight into moto's Logs backend (the one
    every caller's GetLogEvents reads), skipping botocore's serializer and moto's parser: a container
    that logs every request, as access logs do, cost smlocal more CPU in those two than in forwarding
    the requests. smlocal's own log streams are its only users, so the interface is what they need."""

    def __init__(self, account: str, region: str):
        self.account, self.region = account, region

    def _backend(self):
        from moto.logs.models import logs_backends

        return logs_backends[self.account][self.region]  # at each call, as moto's own handler: a reset drops it

    def ensure_group(self, group: str) -> None:
        self._unless_there(lambda backend: backend.create_log_group(group, None))

    def ensure_stream(self, group: str, stream: str) -> None:
        self._unless_there(lambda backend: backend.create_log_stream(group, stream))

    def _unless_there(self, create) -> None:
        from moto.logs.exceptions import ResourceAlreadyExistsException

        try:
            create(self._backend())
        except ResourceAlreadyExistsException:
            pass

    def put_events(self, group: str, stream: str, events: list[dict]) -> None:
        self._backend().put_log_events(group, stream, events)
