"""The sections of `python -m bench`, one scenario class each, in the order they run."""

from __future__ import annotations

from bench.scenarios.base import Scenario
from bench.scenarios.cpu import RequestCpuCosts
from bench.scenarios.federation import Federation
from bench.scenarios.keys import KeyMinting
from bench.scenarios.large import LargeObjects
from bench.scenarios.listing import Listings
from bench.scenarios.machine import MachineLimits
from bench.scenarios.memory import Memory
from bench.scenarios.small import SmallObjects
from bench.scenarios.targets import judge_targets

SCENARIOS: tuple[type[Scenario], ...] = (
    MachineLimits,  # before any server starts
    LargeObjects,
    SmallObjects,
    Listings,
    KeyMinting,
    RequestCpuCosts,  # after `small`: its budget is the CPU per 4 KiB GET measured there
    Federation,  # its rows join machine, cpu and keys
    Memory,
)
ALL_SECTIONS = frozenset(scenario.section for scenario in SCENARIOS)

__all__ = ["ALL_SECTIONS", "SCENARIOS", "Scenario", "judge_targets"]
