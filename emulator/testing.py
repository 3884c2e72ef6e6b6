"""Run smlocal inside the current process on a free port: for tests, notebooks and CI.

    with LocalServer(runtime="fake") as server:
        boto3.client("sagemaker", endpoint_url=server.url, ...)
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from emulator.app import create_app, make_server, shutdown_server
from emulator.config import Config


class LocalServer:
    def __init__(self, data_dir: str | Path | None = None, ephemeral: bool | None = None,
                 runtime: str = "fake", host: str = "127.0.0.1", **config):
        self._tmp = None
        if data_dir is None and not ephemeral:
            self._tmp = tempfile.TemporaryDirectory(prefix="smlocal-")
            data_dir = self._tmp.name
        self.config = Config.from_env(host=host, port=0, data_dir=data_dir, runtime=runtime,
                                      ephemeral=bool(ephemeral), **config)
        self.app = None
        self.server = None
        self.url = ""
        self._thread = None

    def start(self) -> "LocalServer":
        self.app = create_app(self.config)
        self.server, self.url = make_server(self.app, self.config.host, 0)
        self._thread = threading.Thread(target=self._run, name="smlocal-server", daemon=True)
        self._thread.start()
        return self

    def _run(self):
        self.server.run()

    def stop(self) -> None:
        if self.server is not None:
            shutdown_server(self.server)
            self._thread.join(timeout=10)
            self.app.close()
            self.server = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def client_env(self) -> dict[str, str]:
        """Environment variables that point boto3, the AWS CLI and the SDK at this server."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        }

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
