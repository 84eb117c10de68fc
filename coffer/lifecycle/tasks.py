"""What the executor runs: a task per kind of bucket rule (lifecycle, inventory).

The executor owns the schedule, the per-bucket lease (one node per bucket and task at a
time) and the cursor that makes a pass resumable; a task owns one bounded step of work.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass
class StepResult:
    """What one bounded step did. `cursor` is where the next step resumes (None: the
    bucket's pass is complete); `counts` are what the log line and metrics report."""

    cursor: str | None
    counts: dict[str, int] = field(default_factory=dict)


class BucketTask(Protocol):
    name: str  # "lifecycle", "inventory": the lease and cursor are per (bucket, name)

    def buckets(self) -> Iterable[str]:
        """The buckets that have something configured for this task."""
        ...

    def step(self, bucket: str, cursor: str | None, now: datetime, budget: int) -> StepResult:
        """Do at most `budget` units of work (keys examined) from `cursor`."""
        ...
