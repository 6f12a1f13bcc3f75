"""Background jobs for long steps, so a user can look at other heads while one runs.

A ``Job`` runs ``fn(progress)`` in a daemon thread and records progress; a ``JobBoard`` (one per
process, shared through ``st.cache_resource``) finds a job again by its key on the next rerun or page.
Keys hold everything that determines the result (model, data, parameters), so two sessions asking
for the same thing share one computation and read the same immutable result; nothing here is
session state. No Streamlit imports: testable on its own.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger("ccs_app.jobs")


@dataclass
class Job:
    key: str
    label: str
    done: int = 0
    total: int = 0
    share: float | None = None  # a fraction reported directly (``progress(fraction)``)
    stage: str = ""
    result: Any = None
    error: BaseException | None = None
    trace: str = ""
    started: float = field(default_factory=time.monotonic)
    stage_started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    _event: threading.Event = field(default_factory=threading.Event, repr=False)

    def progress(self, *args: Any) -> None:
        """Progress callback, the one shape of the project: ``(done, total, message="")``."""
        nums = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
        words = [a for a in args if isinstance(a, str)]
        if words and words[0] != self.stage or len(nums) >= 2 and int(nums[1]) != self.total:
            self.stage_started = time.monotonic()  # a new step: its own rate and ETA
        if len(nums) >= 2:
            self.done, self.total, self.share = int(nums[0]), int(nums[1]), None
        elif len(nums) == 1:
            self.share = float(nums[0])
        if words:
            self.stage = words[0]

    @property
    def running(self) -> bool:
        return not self._event.is_set()

    @property
    def ok(self) -> bool:
        return self._event.is_set() and self.error is None

    @property
    def fraction(self) -> float:
        if self.share is not None:
            return max(0.0, min(1.0, self.share))
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def text(self) -> str:
        """"label — step done/total · rate/s · ETA n s (elapsed s)": rate and ETA of the current step."""
        count = ""
        if self.total and self.share is None:
            count = f" {self.done:,}/{self.total:,}"
            dt = time.monotonic() - self.stage_started
            if 0 < self.done < self.total and dt > 0.5:
                rate = self.done / dt
                count += f" · {rate:,.1f}/s · ETA {(self.total - self.done) / rate:.0f} s"
        stage = f" — {self.stage}" if self.stage else ""
        return f"{self.label}{stage}{count} ({self.elapsed:.0f} s)"

    def wait(self, timeout: float | None = None) -> bool:
        """Block up to ``timeout`` seconds; True when the job has finished."""
        return self._event.wait(timeout)

    def _run(self, fn: Callable[[Callable[..., None]], Any]) -> None:
        try:
            self.result = fn(self.progress)
        except BaseException as err:  # kept for the page to show; never raised in the thread
            self.error = err
            self.trace = traceback.format_exc()
            log.warning("job %s failed:\n%s", self.label, self.trace)
        finally:
            self.finished = time.monotonic()
            self._event.set()


class JobBoard:
    """Jobs by key: at most one running job per key; finished ones kept (most recent ``keep``)."""

    def __init__(self, keep: int = 64):
        self.keep = keep
        self._jobs: "OrderedDict[str, Job]" = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def submit(self, key: str, label: str, fn: Callable[[Callable[..., None]], Any],
               retry_failed: bool = True) -> Job:
        """The job for ``key``: the running or finished one, else a new one started now."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and (job.running or job.ok or not retry_failed):
                self._jobs.move_to_end(key)
                return job
            job = Job(key=key, label=label)
            self._jobs[key] = job
            self._trim()
        thread = threading.Thread(target=job._run, args=(fn,), name=f"ccs-job-{label}", daemon=True)
        thread.start()
        return job

    def forget(self, key: str) -> None:
        with self._lock:
            self._jobs.pop(key, None)

    def running(self) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if j.running]

    def _trim(self) -> None:
        finished = [k for k, j in self._jobs.items() if not j.running]
        for k in finished[: max(0, len(self._jobs) - self.keep)]:
            del self._jobs[k]
