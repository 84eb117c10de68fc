"""`coffer lifecycle run`: one pass of the bucket tasks now, in this process, and what it did.

It opens the store as `coffer admin` does and runs the node's executor once, ignoring the
interval (a bucket whose pass another node is running right now is reported `busy`). It
takes the lease like any node, so it is safe beside running servers.
"""

from __future__ import annotations

from typing import Any

import click

from coffer.cli.admin import opened
from coffer.cli.options import STORE_FIELDS, settings_options
from coffer.cli.output import json_option, print_json, print_table
from coffer.lifecycle.executor import BucketPass

# What a pass needs beside the store: the rule-day length, the step and the lease.
_FIELDS = (*STORE_FIELDS, "lifecycle_day_seconds", "lifecycle_step_keys", "lifecycle_lease_seconds")


@click.group("lifecycle")
def lifecycle() -> None:
    """Bucket lifecycle rules (and inventory reports) applied by the executor."""


@lifecycle.command("run")
@click.option("--bucket", "bucket_name", default=None, help="Only this bucket (default: every bucket).")
@json_option
@settings_options(_FIELDS)
def run(bucket_name: str | None, as_json: bool, **kw: Any) -> None:
    """Run one pass now and print, per bucket and task, what it did."""
    with opened(kw) as node:
        if node.executor is None:
            raise click.ClickException("this node has no executor")
        if bucket_name is not None:
            node.storage.buckets.get(bucket_name)  # NoSuchBucket for a name that is not one
        passes = node.executor.run_pass(bucket_name, force=True)
    if as_json:
        print_json(
            [
                {
                    "bucket": p.bucket,
                    "task": p.task,
                    "status": _status(p),
                    "steps": p.steps,
                    "seconds": round(p.seconds, 3),
                    "counts": p.counts,
                }
                for p in passes
            ]
        )
    else:
        _table(passes)
    if any(p.failed for p in passes):
        raise click.exceptions.Exit(1)


def _table(passes: list[BucketPass]) -> None:
    rows: list[tuple[str, ...]] = []
    for p in passes:
        status = _status(p)
        if not p.counts:
            rows.append((p.bucket, p.task, status, "", ""))
        for action, count in sorted(p.counts.items()):
            rows.append((p.bucket, p.task, status, action, str(count)))
    print_table(("bucket", "task", "status", "action", "count"), rows)


def _status(p: BucketPass) -> str:
    """done: the bucket's pass reached its end; busy: another node is running it; failed: the
    store failed (see the log); paused: stopped midway."""
    return "failed" if p.failed else "busy" if p.busy else "done" if p.complete else "paused"
