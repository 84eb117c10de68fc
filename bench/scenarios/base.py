"""What a section of `python -m bench` is: a scenario over the shared environment."""

from __future__ import annotations

from typing import ClassVar

from bench.environment import BenchEnvironment
from bench.report import Row


class Scenario:
    """One section of the run (`--sections` names it by `section`): it measures Coffer, the
    bound and the peer back to back, and adds its rows to the environment's report."""

    section: ClassVar[str]
    needs_servers: ClassVar[bool] = True  # False: measured before any server starts

    def __init__(self, env: BenchEnvironment) -> None:
        self.env = env
        self.profile = env.profile

    def run(self) -> None:
        raise NotImplementedError

    def add(self, *rows: Row) -> None:
        for row in rows:
            self.env.report.add(row)
