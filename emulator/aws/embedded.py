"""moto's dispatcher, in-process: every AWS service that is not SageMaker goes here.

moto picks the backend from the Host header or the SigV4 scope, exactly as its own server does.
"""

from __future__ import annotations


def moto_application():
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)
