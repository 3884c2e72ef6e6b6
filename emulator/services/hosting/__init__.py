"""Hosting: endpoints, their fleets of serving instances, and the router that InvokeEndpoint takes."""

from emulator.services.hosting.service import HostingService

__all__ = ["HostingService"]
