"""Training job lifecycle: InProgress (Starting …) → Completed | Failed | Stopping → Stopped.

This version records the lifecycle and honours StopTrainingJob; running the job's hosts on a
runtime (the /opt/ml contract, data, logs, artifacts) plugs in at `start`.
"""

from __future__ import annotations

import logging

from emulator.context import Clock
from emulator.runtime.base import Runtime
from emulator.services.workers import Workers
from emulator.store import Resource, Store

log = logging.getLogger("smlocal.training")

STATUS_MESSAGES = {
    "Starting": "Starting the training job",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
    "Failed": "Training job failed",
}


class TrainingService:
    def __init__(self, store: Store, runtime: Runtime, workers: Workers, clock: Clock | None = None):
        self.store = store
        self.runtime = runtime
        self.workers = workers
        self.clock = clock or Clock()

    def start(self, job: Resource) -> None:
        """Until a runtime executes training, a job waits in Starting until it is stopped."""

    def stop(self, job: Resource) -> None:
        self.transition(job, "Stopping", "Stopping", primary="Stopping")
        self.workers.submit(self.finish, job.arn, "Stopped", "Stopped")

    def recover(self) -> None:
        """A job that was running when smlocal stopped cannot be resumed exactly: it fails, saying so."""
        for status in ("InProgress", "Stopping"):
            for job in self.store.all("training-job", status):
                if status == "Stopping":
                    self.finish(job.arn, "Stopped", "Stopped")
                else:
                    self.finish(job.arn, "Failed", "Failed",
                                failure="InternalServerError: smlocal was restarted while this job ran;"
                                        " the job cannot be resumed. Start it again.")

    # -- status bookkeeping -------------------------------------------------------------------

    def transition(self, job: Resource, secondary: str, message_key: str, primary: str | None = None,
                   message: str | None = None) -> None:
        now = self.clock.now()
        data = job.data
        transitions = data.setdefault("SecondaryStatusTransitions", [])
        if transitions and "EndTime" not in transitions[-1]:
            transitions[-1]["EndTime"] = now
        transitions.append({"Status": secondary, "StartTime": now,
                            "StatusMessage": message or STATUS_MESSAGES.get(message_key, secondary)})
        data["SecondaryStatus"] = secondary
        if primary:
            job.status = data["TrainingJobStatus"] = primary
        job.modified = data["LastModifiedTime"] = now
        self.store.update(job, message)

    def finish(self, arn: str, primary: str, secondary: str, failure: str | None = None) -> None:
        job = self.store.get_by_arn(arn)
        if job is None:
            return
        now = self.clock.now()
        if failure:
            job.data["FailureReason"] = failure[:1024]
        job.data["TrainingEndTime"] = now
        self.transition(job, secondary, secondary, primary=primary, message=failure)
        job.data["SecondaryStatusTransitions"][-1]["EndTime"] = now
        self.store.update(job)

    def close(self) -> None:
        return None
