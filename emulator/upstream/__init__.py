"""The upstream seam: how smlocal sends a call to a serving container and gets its answer.

A `Transport` talks to one container (`http://host:port`): `send` returns the whole answer,
`stream` returns once the status and headers are in and hands the body over piece by piece as it
arrives (InvokeEndpointWithResponseStream). The router holds one transport per container of each
instance and never sees a socket, so its rules (weights, health, retries, errors) are tested against
`fake.FakeTransport` and the wire against a real socket, each on its own, the way httpx separates
its clients from their transports.

Failures mean the same for every transport: `UpstreamConnectionError` when the container cannot
be reached or the connection breaks before the answer is complete (the router marks the instance
unhealthy and tries another), `UpstreamTimeout` when no answer comes within the request's timeout
(AWS's ModelError). A container's own error status is an answer, not an exception.
"""

from emulator.upstream.base import (Reply, Request, StreamedReply, Transport, UpstreamConnectionError,
                                    UpstreamTimeout)
from emulator.upstream.http import HttpTransport

connect = HttpTransport  # the real transport to the container at a URL, with its own keep-alive pool

__all__ = ["HttpTransport", "Reply", "Request", "StreamedReply", "Transport", "UpstreamConnectionError",
           "UpstreamTimeout", "connect"]
