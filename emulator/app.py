"""Builds the one application behind the one port: store, runtime, services, providers, pipeline.

`create_app(config)` is what the CLI serves and what tests run in-process; `serve(config)` runs its
pipeline under uvicorn (emulator/http_server.py) until SIGINT/SIGTERM.
"""

from __future__ import annotations

import functools
import logging
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

from emulator import __version__
from emulator import auth
from emulator.aws.clients import AwsClients
from emulator.aws.embedded import moto_application
from emulator.aws.s3_persistence import S3Persistence
from emulator.config import Config
from emulator.http_server import make_server, shutdown_server  # noqa: F401  (re-exported)
from emulator.pipeline import Pipeline
from emulator.pipeline.authenticate import Authenticate
from emulator.providers import handler_table
from emulator.providers.endpoint_configs import EndpointConfigsProvider
from emulator.providers.endpoints import EndpointsProvider
from emulator.providers.models import ModelsProvider
from emulator.providers.runtime import RuntimeProvider
from emulator.providers.tags import TagsProvider
from emulator.providers.training_jobs import TrainingJobsProvider
from emulator.runtime.ownership import PIDS_FOLDER, owner_id
from emulator.runtime.select import create_runtime
from emulator.services.hosting import HostingService
from emulator.services.hosting.metrics import InvocationMetrics
from emulator.services.hosting.router import Router
from emulator.services.training import TrainingService
from emulator.services.background import BackgroundTasks
from emulator.services.credentials import Issuer, Lease, fixed_pair
from emulator.store import Store

log = logging.getLogger("smlocal")
# When smlocal stops, what still runs gets this long after SIGTERM, all at once, before SIGKILL: a
# server that ignores SIGTERM (werkzeug's, as PID 1 of a container) must not hold the stop long.
SHUTDOWN_GRACE_SECONDS = 3.0


@dataclass
class Services:
    training: TrainingService
    hosting: HostingService


class App:
    """The request pipeline plus everything it serves, closed together."""

    def __init__(self, config: Config):
        self.config = config
        data_dir = None if config.ephemeral else config.data_dir
        self.store = Store(data_dir / "smlocal.db" if data_dir else None)
        self.s3 = S3Persistence(data_dir / "s3" if data_dir else None)
        self.runtime = create_runtime(config)
        self.background = BackgroundTasks()
        self.clients = AwsClients()
        # the Docker bridge's listeners, where every container reaches smlocal: verified even without --auth
        self.guarded = frozenset(address for address in self.runtime.listen_addresses()
                                 if address != config.host and not auth.exposure.is_loopback(address))
        self.authenticator = auth.from_config(config) or (auth.Authenticator(auth.KeyRing()) if self.guarded else None)
        if config.auth:
            self.clients.use_credentials(*self.authenticator.internal_credentials)
        credentials = self._credentials()
        self.metrics = InvocationMetrics(self.clients)
        self.router = Router(metrics=self.metrics.record)
        self._scratch = tempfile.TemporaryDirectory(prefix="smlocal-work-") if data_dir is None else None
        work_dir = Path(self._scratch.name) if self._scratch else data_dir / "work"
        self.owner = owner_id(data_dir)
        self.runtime.claim(self.owner, work_dir)  # an earlier run's processes and containers go first,
        _clear_work(work_dir)  # then their folders: nothing restored reuses one
        self.services = Services(
            training=TrainingService(
                self.store, self.runtime, self.background, clients=self.clients, work_dir=work_dir,
                max_concurrent=config.max_concurrent_jobs, stop_grace_seconds=config.stop_grace_seconds,
                execute=self.runtime.name != "fake", credentials=credentials),
            hosting=HostingService(
                self.store, self.runtime, self.background, self.router, clients=self.clients, work_dir=work_dir,
                startup_timeout=config.startup_timeout, stop_grace_seconds=config.stop_grace_seconds,
                credentials=credentials),
        )
        configs = EndpointConfigsProvider(self.store, self.services)
        providers = [
            ModelsProvider(self.store, self.services),
            configs,
            EndpointsProvider(self.store, self.services, configs),
            TrainingJobsProvider(self.store, self.services),
            TagsProvider(self.store, self.services),
        ]
        self.runtime_provider = RuntimeProvider(self.router, self.clients, self.background)
        self.handlers = {"sagemaker": handler_table("sagemaker", providers),
                         "sagemaker-runtime": handler_table("sagemaker-runtime", [self.runtime_provider])}
        self.pipeline = Pipeline(self.handlers, moto_app=self.s3.wrap(moto_application()),
                                 internal={"/_smlocal/health": self.health}, threads=config.threads,
                                 read_timeout=config.read_timeout, identify=self._identify())
        self.s3.restore()
        self._recovered = False

    def _identify(self):
        """The pipeline's caller step: every request verified with --auth; else those that arrive on
        the Docker bridge, the others identified by the pipeline's own step (unverified)."""
        if self.authenticator is None:
            return None
        verify_on = None if self.config.auth else self.guarded
        return lambda pipeline: Authenticate(self.authenticator, pipeline.pool, verify_on=verify_on,
                                             fallback=pipeline.identify_caller)

    def _credentials(self) -> Issuer:
        """What containers sign with: their role's temporary key wherever requests are verified (with
        --auth a role of the resource's own account only; without it the bridge checks keys, not
        accounts), else the contract's fixed pair."""
        if self.config.auth:
            return role_credentials
        return functools.partial(role_credentials, any_account=True) if self.guarded else fixed_pair

    def set_base_url(self, url: str) -> None:
        """Once the port is bound: where smlocal's own services and the runtime reach it."""
        self.base_url = url
        self.clients.set_endpoint(url)
        self.runtime.set_endpoint(url)
        if not self._recovered:  # recovery reads S3 (models), so it waits until smlocal answers
            self._recovered = True
            self.services.training.recover()
            self.services.hosting.recover()

    def health(self):
        return 200, {
            "status": "running",
            "version": __version__,
            "runtime": self.runtime.name,
            "instance": self.owner,  # what this server's processes and containers are labelled with
            "ephemeral": self.config.ephemeral,
            "data_dir": None if self.config.ephemeral else str(self.config.data_dir),
        }

    def close(self) -> None:
        self.services.training.abandon_runs()
        self.services.hosting.stop_watching()
        self.runtime.halt_everything(SHUTDOWN_GRACE_SECONDS)  # all at once, then each service ends
        self.pipeline.close()
        self.metrics.close()
        self.services.hosting.close()
        self.services.training.close()
        self.background.close()
        self.runtime.close()
        self.store.close()
        self.s3.close()
        if self._scratch is not None:
            self._scratch.cleanup()


def _clear_work(work_dir: Path) -> None:
    """Remove the work folders of jobs and instances of an earlier run (the pid records were read)."""
    for entry in work_dir.iterdir() if work_dir.is_dir() else ():
        if entry.name == PIDS_FOLDER:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def role_credentials(account: str, role_arn: str, session_name: str, region: str, any_account: bool = False) -> Lease:
    """A job's or instance's containers get a fresh temporary key of their execution role from
    smlocal's STS (revoked with the lease). The role must be of the resource's own account, as
    SageMaker passes no other (unless `any_account`); a model without a role gives its containers
    no credentials."""
    if not role_arn:
        return Lease({})
    match = auth.container.ROLE_ARN.match(role_arn)
    if match is None or (match.group(2) != account and not any_account):
        raise ValueError(f"Could not assume role {role_arn}. Please ensure that the role exists in account "
                         f"{account} and allows principal 'sagemaker.amazonaws.com' to assume the role.")
    issued = auth.issue_container_credentials(role_arn, session_name, region)
    return Lease(issued.environment(), lambda: auth.revoke_container_credentials(issued, region))


def create_app(config: Config) -> App:
    return App(config)


def serve(config: Config, ready=None) -> None:
    app = create_app(config)
    server, url = make_server(app, config.host, config.port)
    print(f"smlocal {__version__} listening on {url} (runtime: {app.runtime.name}, "
          f"{'ephemeral' if config.ephemeral else 'data in ' + str(config.data_dir)})", flush=True)
    print(f"  export AWS_ENDPOINT_URL={url}", flush=True)

    def stop(signum, frame):
        log.info("signal %s: stopping", signum)
        shutdown_server(server)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if ready is not None:
        ready(url)
    try:
        server.run()
    finally:
        app.close()
        print("smlocal stopped", flush=True)
