"""Training job lifecycle: InProgress (Starting → Downloading → Training → Uploading) → Completed,
Failed, or Stopping → Stopped (MaxRuntimeExceeded when the clock ran out).

The service keeps the queue (a limit on jobs that run at once; the rest wait in Starting) and the
status bookkeeping; `TrainingRun` (services/training_run.py) does one job's work on a runtime.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from emulator.context import Clock
from emulator.runtime.base import Runtime
from emulator.services.credentials import Issuer, fixed_pair
from emulator.services.training.run import TrainingRun
from emulator.services.background import BackgroundTasks
from emulator.store import Resource, Store

log = logging.getLogger("smlocal.training")

MESSAGES = {
    "Starting": "Starting the training job",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job stopped: it exceeded MaxRuntimeInSeconds",
}


class TrainingService:
    def __init__(self, store: Store, runtime: Runtime, background: BackgroundTasks, clients=None,
                 work_dir: Path | None = None, max_concurrent: int = 4, stop_grace_seconds: float = 120.0,
                 clock: Clock | None = None, execute: bool = True, credentials: Issuer = fixed_pair):
        self.store = store
        self.runtime = runtime
        self.background = background
        self.clients = clients
        self.work_dir = work_dir
        self.stop_grace_seconds = stop_grace_seconds
        self.clock = clock or Clock()
        self.credentials = credentials  # each job's hosts: the job's role's credentials
        self.execute = execute  # False on the fake runtime: jobs wait in Starting until stopped
        self.slots = threading.BoundedSemaphore(max_concurrent)
        self.runs: dict[str, TrainingRun] = {}
        self._lock = threading.RLock()  # serialises status writes of all jobs

    def launch(self, job: Resource) -> None:
        """Run a created job in the background (its own thread, under the concurrency limit)."""
        if not self.execute:
            return
        run = TrainingRun(self, job.arn)
        with self._lock:
            self.runs[job.arn] = run
        run.start()

    def stop(self, job: Resource) -> None:
        with self._lock:
            self.transition(job.arn, "Stopping", primary="Stopping")
            run = self.runs.get(job.arn)
        if run is not None:
            run.request_stop()
        else:  # nothing runs it: it stops at once
            self.background.submit(self.finish, job.arn, "Stopped", "Stopped")

    def recover(self) -> None:
        """A job that was running when smlocal stopped cannot be resumed exactly: it fails, saying so."""
        for job in self.store.all("training-job", "Stopping"):
            self.finish(job.arn, "Stopped", "Stopped")
        for job in self.store.all("training-job", "InProgress"):
            self.finish(job.arn, "Failed", "Failed",
                        failure="InternalServerError: smlocal was restarted while this job ran; the job "
                                "cannot be resumed. Start it again under a new name.")

    def forget(self, arn: str) -> None:
        with self._lock:
            self.runs.pop(arn, None)

    # -- status bookkeeping (every write of a job's status goes through here) ------------------

    def transition(self, arn: str, secondary: str, primary: str | None = None, message: str | None = None,
                   **fields) -> Resource | None:
        with self._lock:
            job = self.store.get_by_arn(arn)
            if job is None:
                return None
            if primary is None and job.status != "InProgress":
                return job  # a stop already moved it on; late secondary steps are not shown
            now = self.clock.now()
            data = job.data
            transitions = data.setdefault("SecondaryStatusTransitions", [])
            if transitions and "EndTime" not in transitions[-1]:
                transitions[-1]["EndTime"] = now
            transitions.append({"Status": secondary, "StartTime": now,
                                "StatusMessage": message or MESSAGES.get(secondary, secondary)})
            data["SecondaryStatus"] = secondary
            if primary:
                job.status = data["TrainingJobStatus"] = primary
            data.update({k: v for k, v in fields.items() if v is not None})
            job.modified = data["LastModifiedTime"] = now
            self.store.update(job, message)
            return job

    def finish(self, arn: str, primary: str, secondary: str, failure: str | None = None, **fields) -> None:
        with self._lock:
            job = self.store.get_by_arn(arn)
            if job is None or job.status in ("Completed", "Failed", "Stopped"):
                return
            now = self.clock.now()
            start = job.data.get("TrainingStartTime")
            if start is not None:
                seconds = max(0, int(round(now - start)))
                fields.update(TrainingTimeInSeconds=seconds, BillableTimeInSeconds=seconds)
            if failure:
                fields["FailureReason"] = failure[:1024]
            job = self.transition(arn, secondary, primary=primary,
                                  message=failure[:1024] if failure and primary == "Failed" else None,
                                  TrainingEndTime=now, **fields)
            job.data["SecondaryStatusTransitions"][-1]["EndTime"] = now
            self.store.update(job)

    def abandon_runs(self) -> list[TrainingRun]:
        """smlocal is stopping: running jobs end without a final status (the next start fails them,
        saying why), whatever their hosts do from now on."""
        with self._lock:
            runs = list(self.runs.values())
        for run in runs:
            run.abandon()
        return runs

    def close(self) -> None:
        runs = self.abandon_runs()
        for run in runs:  # their hosts stop within a second; then the store may close
            run.join(timeout=30)
