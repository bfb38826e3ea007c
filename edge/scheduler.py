"""Every scheduled job of the daemon, declared in one place, each wrapped so a failure never kills the scheduler."""

import datetime
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler

from edge.store import state
from edge.store.writer import Writer

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    """A periodic job: its name (shown in ``edge status``), period and function."""

    name: str
    every_s: float
    run: Callable[[], None]


class Scheduler:
    """APScheduler 3 ``BackgroundScheduler`` running the daemon's jobs and recording each run in the store."""

    def __init__(self, jobs: list[Job], writer: Writer) -> None:
        self._jobs = jobs
        self._writer = writer
        self._scheduler: BackgroundScheduler | None = None
        self.beat_at = time.monotonic()

    def start(self) -> None:
        """Start running the jobs; each runs once right away."""
        if self._scheduler is not None:
            return
        # One worker thread: jobs are short and their writes go through the single writer anyway.
        scheduler = BackgroundScheduler(executors={"default": {"type": "threadpool", "max_workers": 1}},
                                        job_defaults={"coalesce": True, "max_instances": 1,
                                                      "misfire_grace_time": 30})
        for job in self._jobs:
            scheduler.add_job(self._wrap(job), "interval", seconds=job.every_s, id=job.name, name=job.name,
                              next_run_time=None)
        scheduler.start()
        for job in self._jobs:
            scheduler.modify_job(job.name, next_run_time=_now())
        self._scheduler = scheduler

    def stop(self) -> None:
        """Stop the scheduler, letting a running job finish; safe to call twice."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=True)

    def run_now(self, name: str) -> None:
        """Run one job immediately in the calling thread (used on shutdown to flush rollups)."""
        for job in self._jobs:
            if job.name == name:
                self._wrap(job)()

    def _wrap(self, job: Job) -> Callable[[], None]:
        def wrapped() -> None:
            started = time.time()
            error: str | None = None
            try:
                job.run()
            except Exception as err:  # one failing job must never stop the others
                error = f"{type(err).__name__}: {err}"
                logger.error("Job %s failed: %s\n%s", job.name, error, traceback.format_exc())
            self.beat_at = time.monotonic()
            duration = time.time() - started
            try:
                self._writer.call(lambda conn: state.record_job_run(conn, job.name, started, duration, error))
            except Exception as err:
                logger.error("Cannot record run of job %s: %s", job.name, err)

        return wrapped


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
