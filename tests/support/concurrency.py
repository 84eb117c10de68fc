"""Calls that race: `at_once` runs one attempt per thread, released together, for the tests
that check what concurrent writers, creators or completions of one thing end with."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def at_once(count: int, attempt: Callable[[int], T], timeout: float = 120.0) -> list[T]:
    """Call attempt(0) .. attempt(count - 1) in `count` threads released together by a barrier
    and return their results in that order; an exception from any call is raised here."""
    start = threading.Barrier(count)
    results: dict[int, T] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = attempt(i)
        except BaseException as exc:  # raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    if errors:
        raise errors[0]
    assert len(results) == count, f"{count - len(results)} of {count} calls still running after {timeout}s"
    return [results[i] for i in range(count)]
