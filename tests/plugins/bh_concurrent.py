"""A concurrent launcher written from the public API alone, as a third party would write one for its cluster.

``lifo`` is ``concurrent`` and not ``local``: it takes every case the runner
submits, then hands results back newest first, so the runner must cope with
any order.  Like a remote launcher it asks the target itself, with
``benchharness.runner.machine_job``, where (here: in this process) the case
runs.  It records what it saw, for the tests to check.
"""

from __future__ import annotations

from benchharness_launchers import InlineLauncher

from benchharness.api import CaseResult, Job, hookimpl
from benchharness.runner import machine_job

#: What the last ``lifo`` launcher saw: ``submitted`` (case id, process), ``in_flight_max``, ``overlap``
#: (a case submitted while one of its processes was still out), ``closed``.
SEEN: dict = {}


class Lifo(InlineLauncher):  # runs each case in this process, with its target's environment
    name = "lifo"
    description = "takes every case at once and returns the newest first (a test of concurrent launchers)"
    concurrent = True
    local = False

    def __init__(self, options):  # type: ignore[no-untyped-def]
        super().__init__(options)
        self.out: list[Job] = []
        SEEN.clear()
        SEEN.update(submitted=[], in_flight_max=0, overlap=False, closed=False, environments={})

    def submit(self, job: Job) -> None:
        case_id = job.payload.case.id
        SEEN["overlap"] |= any(j.payload.case.id == case_id for j in self.out)
        SEEN["submitted"].append((case_id, job.process))
        self.out.append(job)
        SEEN["in_flight_max"] = max(SEEN["in_flight_max"], len(self.out))

    def next_result(self) -> tuple[Job, CaseResult]:
        job = self.out.pop()
        return job, self.launch(job)

    def launch(self, job: Job) -> CaseResult:
        done = machine_job(job, job.host, self.name)  # "on the node": the target's check and environment here
        if isinstance(done, CaseResult):
            return done
        SEEN["environments"][job.payload.case.id] = dict(done.environment)
        return super().launch(done)

    def close(self) -> None:
        SEEN["closed"] = True


@hookimpl
def benchharness_register_launchers(register):  # type: ignore[no-untyped-def]
    register(Lifo)
