"""One training job's work, on its own thread: check inputs, lay out each host's /opt/ml, feed the
data, run the hosts on the runtime, stream logs and metrics, upload artifacts, clean up.

Artifacts written before a failure or a stop are still uploaded; nothing of the job (containers,
networks, FIFOs, folders) outlives it.
"""

from __future__ import annotations

import logging
import shutil
import socket
import threading
import time
import uuid
from pathlib import Path

from emulator.aws.s3_objects import NotAnS3Uri
from emulator.runtime import confined, contract
from emulator.runtime.base import RuntimeUnavailable, TrainingHostSpec
from emulator.runtime.contract import OptMl, write_json
from emulator.services.training import channels as data_io
from emulator.services.training.artifacts import CheckpointSync, upload_outputs
from emulator.aws.logs import GROUP, Flusher, LogStream
from emulator.services.training.metrics import MetricParser

log = logging.getLogger("smlocal.training")
CHECKPOINT_SYNC_SECONDS = 5.0
OUT_OF_MEMORY = ("ClientError: Please use an instance type with more memory, or reduce the size of job data "
                 "processed on an instance.")  # AWS's FailureReason for a host killed for its memory


class TrainingRun(threading.Thread):
    def __init__(self, service, arn: str):
        super().__init__(name=f"training-{arn.rsplit('/', 1)[-1]}", daemon=True)
        self.service = service
        self.arn = arn
        self.stop_requested = threading.Event()
        self.ended = threading.Event()  # the hosts are done: feeders and syncs stop
        self.processes = []
        self.grace = service.stop_grace_seconds
        self.abandoned = False
        self.started_at = time.monotonic()
        self.streams: dict[Path, LogStream] = {}  # each host's log stream, by its tree's root
        self.checkpoints: CheckpointSync | None = None
        self.logging: tuple = ()  # (metric parser, log flusher, output readers) once the hosts start
        self.stamp = int(time.time())  # in the names of the job's log streams
        self.lease = None  # the credentials the hosts got, taken back when the job ends

    def request_stop(self) -> None:
        self.stop_requested.set()

    def abandon(self) -> None:
        """smlocal is shutting down: stop the hosts quickly and leave the job InProgress, so the next
        start's recover() fails it with a reason that says so."""
        self.abandoned = True
        self.grace = 1.0
        self.stop_requested.set()

    # -- the job ------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            while not self.service.slots.acquire(timeout=0.2):  # queued jobs wait in Starting
                if self.stop_requested.is_set():
                    if not self.abandoned:
                        self.service.finish(self.arn, "Stopped", "Stopped")
                    return
            try:
                self._execute()
            finally:
                self.service.slots.release()
        except Exception as exc:
            if self.abandoned:
                return
            log.exception("training job %s failed inside smlocal", self.arn)
            self.service.finish(self.arn, "Failed", "Failed", failure=f"InternalServerError: {exc}")
        finally:
            self.service.forget(self.arn)

    def _execute(self) -> None:
        job = self.service.store.get_by_arn(self.arn)
        if job is None:
            return
        spec = job.data
        count = spec.get("ResourceConfig", {}).get("InstanceCount", 1)
        hosts = sorted(contract.host_name(i) for i in range(1, count + 1))
        folder = Path(self.service.work_dir) / f"{job.name}-{uuid.uuid4().hex[:8]}"
        trees = {host: OptMl(folder / host) for host in hosts}
        s3 = self.service.clients.s3(job.account, job.region)
        outcome: tuple = ("Failed", "Failed", "InternalServerError: the job ended unexpectedly")
        trained, feeders, network = False, [], None
        try:
            channels = self._resolve_channels(s3, job)
            if self.stop_requested.is_set():
                outcome = ("Stopped", "Stopped", None)
                return
            self.started_at = time.monotonic()
            self.service.transition(self.arn, "Downloading", TrainingStartTime=self.service.clock.now())
            self._lay_out(job, trees, hosts)
            self.checkpoints = self._checkpoints(s3, job, trees)
            feeders = self._fetch(s3, job, channels, trees)
            if self.stop_requested.is_set():
                outcome = ("Stopped", "Stopped", None)
                return
            network = self.service.runtime.create_network(job.name, hosts) if len(hosts) > 1 else None
            self._start_hosts(job, trees, hosts, network)  # a missing image fails here, still Downloading
            self.service.transition(self.arn, "Training")
            trained = True
            outcome = self._train(job, trees, hosts, feeders)
        except data_io.ChannelError as exc:
            outcome = ("Failed", "Failed", str(exc))
        except (RuntimeUnavailable, NotAnS3Uri) as exc:
            outcome = ("Failed", "Failed", f"ClientError: {exc}")
        finally:
            self.ended.set()
            self._wrap_up(job, s3, folder, trees, hosts, trained, outcome, network)

    # -- steps --------------------------------------------------------------------------------

    def _resolve_channels(self, s3, job) -> list[tuple[dict, list]]:
        resolved = []
        for channel in job.data.get("InputDataConfig", []):
            source = data_io.ChannelSource(s3, channel, job.region, job.data.get("RoleArn", ""))
            resolved.append((channel, source.items()))
        return resolved

    def _lay_out(self, job, trees: dict[str, OptMl], hosts: list[str]) -> None:
        spec = job.data
        default_mode = spec["AlgorithmSpecification"].get("TrainingInputMode", "File")
        channels = {}
        for channel in spec.get("InputDataConfig", []):
            entry = {
                "TrainingInputMode": data_io.channel_mode(channel, default_mode),
                "S3DistributionType": channel["DataSource"].get("S3DataSource", {}).get(
                    "S3DataDistributionType", "FullyReplicated"),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
            if channel.get("ContentType"):
                entry["ContentType"] = channel["ContentType"]
            channels[channel["ChannelName"]] = entry
        instance_type = spec.get("ResourceConfig", {}).get("InstanceType", "ml.m5.large")
        for host, tree in trees.items():
            tree.make_training_tree()
            write_json(tree.hyperparameters, {str(k): str(v) for k, v in spec.get("HyperParameters", {}).items()})
            write_json(tree.input_data_config, channels)
            write_json(tree.resource_config, contract.resource_config(host, hosts, instance_type))
            if "CheckpointConfig" in spec:
                checkpoints = spec["CheckpointConfig"]
                write_json(tree.checkpoint_config,
                           contract.checkpoint_config(checkpoints.get("LocalPath"), checkpoints["S3Uri"]))

    def _checkpoints(self, s3, job, trees) -> CheckpointSync | None:
        config = job.data.get("CheckpointConfig")
        if not config:
            return None
        tree = next(iter(trees.values()))
        sync = CheckpointSync(s3, config["S3Uri"], [t.root for t in trees.values()],
                              str(tree.checkpoints.relative_to(tree.root)), self._warn)
        sync.seed()
        return sync

    def _fetch(self, s3, job, channels, trees: dict[str, OptMl]) -> list:
        default_mode = job.data["AlgorithmSpecification"].get("TrainingInputMode", "File")
        feeders = []
        hosts = list(trees)
        for channel, items in channels:
            source = channel["DataSource"].get("S3DataSource", {})
            seed = channel.get("ShuffleConfig", {}).get("Seed")
            shares = data_io.assign(items, len(hosts), source.get("S3DataDistributionType", "FullyReplicated"), seed)
            name = channel["ChannelName"]
            if data_io.channel_mode(channel, default_mode) == "Pipe":
                for host, share in zip(hosts, shares):
                    feeder = data_io.PipeFeeder(s3, trees[host], channel, share, seed, self.ended)
                    feeder.start()
                    feeders.append(feeder)
                continue
            if source.get("S3DataType") == "AugmentedManifestFile":
                raise data_io.ChannelError(f"ClientError: channel {name}: AugmentedManifestFile needs Pipe mode.")
            if channel.get("CompressionType", "None") != "None" or channel.get("RecordWrapperType", "None") != "None":
                raise data_io.ChannelError(
                    f"ClientError: channel {name}: CompressionType and RecordWrapperType need Pipe mode.")
            replicated = len(set(map(id, shares))) == 1 and len(hosts) > 1
            data_io.download(s3, shares[0], trees[hosts[0]].channel(name), self.stop_requested)
            for host, share in list(zip(hosts, shares))[1:]:
                target = trees[host].channel(name)
                target.mkdir(parents=True, exist_ok=True)
                if replicated:
                    data_io.replicate(trees[hosts[0]].channel(name), target)
                else:
                    data_io.download(s3, share, target, self.stop_requested)
            for tree in trees.values():
                tree.channel(name).mkdir(parents=True, exist_ok=True)
        return feeders

    def _environment(self, job) -> dict[str, str]:
        try:
            self.lease = self.service.credentials(job.account, job.data.get("RoleArn", ""), job.name, job.region)
        except ValueError as exc:
            raise RuntimeUnavailable(str(exc)) from None
        env = {"TRAINING_JOB_NAME": job.name, "TRAINING_JOB_ARN": job.arn,
               **contract.aws_environment(job.region, self.service.runtime.container_endpoint_url(),
                                          self.lease.environment)}
        env["SMLOCAL_COORDINATOR_PORT"] = str(_free_port())  # where algo-1 gathers multi-host shares
        env.update(job.data.get("Environment", {}))
        return env

    def _start_hosts(self, job, trees, hosts, network) -> None:
        """Start every host, each with the reader of its output and its log stream."""
        spec = job.data
        metrics = MetricParser(spec["AlgorithmSpecification"].get("MetricDefinitions", []))
        writer = self.service.clients.log_writer(job.account, job.region)
        writer.ensure_group(GROUP)
        streams: list[LogStream] = []
        flusher = Flusher(streams)  # flushes the streams added to the list as the hosts start
        flusher.start()
        env, pumps = self._environment(job), []
        try:
            for host in hosts:
                pumps.append(self._start_host(job, host, trees, hosts, network, env, (writer, streams, metrics)))
        except BaseException:  # a host could not start: the job fails, and its wrap-up removes the others
            flusher.stop()
            raise
        finally:
            self.streams = {trees[host].root: stream for host, stream in zip(hosts, streams)}
        self.logging = (metrics, flusher, pumps)

    def _train(self, job, trees, hosts, feeders) -> tuple:
        """Supervise the started hosts until they end; their outcome."""
        metrics, flusher, pumps = self.logging
        ending = self._supervise(job.data, self.checkpoints, feeders)
        for pump in pumps:
            pump.join(timeout=30)
        flusher.stop()
        codes = [p.wait(0) for p in self.processes]
        return self._outcome(ending, codes, trees, hosts, metrics)

    def _start_host(self, job, host, trees, hosts, network, env, logging_to) -> threading.Thread:
        """Start one host and, at once, the reader of its output: a line carries the time it was
        written (the engine's, or the moment it is read), never the time the last host started."""
        spec, (writer, streams, metrics) = job.data, logging_to
        algorithm = spec["AlgorithmSpecification"]
        process = self.service.runtime.run_training(TrainingHostSpec(
            job_name=job.name, host=host, hosts=hosts, image=algorithm.get("TrainingImage", ""),
            root=trees[host].root, environment=env, entrypoint=algorithm.get("ContainerEntrypoint"),
            arguments=algorithm.get("ContainerArguments"), network=network,
            network_isolation=spec.get("EnableNetworkIsolation", False),
            instance_type=spec.get("ResourceConfig", {}).get("InstanceType", "ml.m5.large"),
        ))
        self.processes.append(process)
        streams.append(LogStream(writer, f"{job.name}/{host}-{self.stamp}", GROUP))
        pump = threading.Thread(target=_pump, args=(process, streams[-1], metrics), daemon=True)
        pump.start()
        return pump

    def _supervise(self, spec, checkpoints, feeders) -> str:
        """Wait for the hosts; stop them on StopTrainingJob, MaxRuntimeInSeconds or a failed host."""
        limit = spec.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400)
        deadline = self.started_at + limit
        next_sync = time.monotonic() + CHECKPOINT_SYNC_SECONDS
        while True:
            codes = [p.wait(0.1) for p in self.processes]
            if all(c is not None for c in codes):
                return "exited"
            if any(c not in (None, 0) for c in codes):
                self._terminate_all(grace=10.0)
                return "exited"
            pipe_error = next((f.error for f in feeders if f.error), None)
            if pipe_error:
                self._terminate_all(grace=10.0)
                return "pipe:" + pipe_error
            if self.stop_requested.is_set():
                self._terminate_all(self.grace)
                return "stopped"
            if time.monotonic() > deadline:
                self._terminate_all(self.grace)
                return "max-runtime"
            if checkpoints and time.monotonic() > next_sync:
                _quietly(checkpoints.sync)
                next_sync = time.monotonic() + CHECKPOINT_SYNC_SECONDS

    def _terminate_all(self, grace: float) -> None:
        threads = [threading.Thread(target=p.terminate, args=(grace,)) for p in self.processes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _outcome(self, ending, codes, trees, hosts, metrics) -> tuple:
        fields = {"FinalMetricDataList": metrics.final()}
        if ending == "stopped":
            return ("Stopped", "Stopped", None, fields)
        if ending == "max-runtime":
            return ("Stopped", "MaxRuntimeExceeded", None, fields)
        if ending.startswith("pipe:"):
            return ("Failed", "Failed", ending[5:], fields)
        for host, code, process in zip(hosts, codes, self.processes):
            if code not in (0, None):
                if process.out_of_memory():
                    reason = OUT_OF_MEMORY
                else:
                    reason = self._failure_file(trees[host]) or f"AlgorithmError: Exit Code: {code}"
                return ("Failed", "Failed", reason, fields)
        return ("Completed", "Completed", None, fields)

    def _failure_file(self, tree: OptMl) -> str | None:
        """What the host wrote to /opt/ml/output/failure, if that is a regular file of its own."""
        relative = str(tree.failure.relative_to(tree.root))
        try:
            with confined.open_regular(tree.root, relative) as f:
                return f.read(4 * contract.FAILURE_REASON_LIMIT).decode(errors="replace")[: contract.FAILURE_REASON_LIMIT]
        except FileNotFoundError:
            return None
        except confined.NotRegular as exc:
            self._warn(tree.root, f"smlocal: /opt/ml/{relative} was not read as the failure reason: {exc}.")
            return None

    def _warn(self, root: Path, message: str) -> None:
        """A line in the host's log stream (smlocal's own, about what the host left)."""
        stream = self.streams.get(root)
        if stream is None:
            log.warning("%s: %s", root.name, message)
        else:
            stream.write(message)

    def _wrap_up(self, job, s3, folder, trees, hosts, trained, outcome, network) -> None:
        primary, secondary, failure = outcome[:3]
        fields = dict(outcome[3]) if len(outcome) > 3 else {}
        if self.stop_requested.is_set() and primary != "Failed":
            primary, secondary = "Stopped", secondary if secondary == "MaxRuntimeExceeded" else "Stopped"
        if self.abandoned:
            self._clean(folder, network)
            return
        try:
            if trained:
                self.service.transition(self.arn, "Uploading")
                uri = upload_outputs(s3, [trees[h].root for h in hosts], job.data["OutputDataConfig"]["S3OutputPath"],
                                     job.name, folder / "_artifacts",
                                     compress=job.data["OutputDataConfig"].get("CompressionType", "GZIP") != "NONE",
                                     warn=self._warn)
                fields["ModelArtifacts"] = {"S3ModelArtifacts": uri}
                if self.checkpoints is not None:
                    _quietly(self.checkpoints.sync)
        except Exception as exc:
            log.exception("uploading the artifacts of %s failed", job.name)
            if primary == "Completed":
                primary, secondary, failure = "Failed", "Failed", f"InternalServerError: uploading artifacts failed: {exc}"
        finally:
            for stream in self.streams.values():  # what _warn wrote since the flusher stopped
                _quietly(stream.flush)
            self._clean(folder, network)  # before the final status: an ended job leaves nothing behind
            self.service.finish(self.arn, primary, secondary, failure=failure, **fields)

    def _clean(self, folder: Path, network) -> None:
        for process in self.processes:
            _quietly(process.remove)
        if self.lease is not None:
            _quietly(self.lease.release)
        _quietly(self.service.runtime.remove_network, network)
        shutil.rmtree(folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pump(process, stream: LogStream, metrics: MetricParser) -> None:
    for written, line in process.stamped_lines():
        stream.write(line, written)
        metrics.feed(line, written)


def _quietly(fn, *args) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("cleanup step %s failed", getattr(fn, "__name__", fn))
