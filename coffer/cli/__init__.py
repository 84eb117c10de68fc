"""The `coffer` command: serve, admin (works on the store); keys, policy, bucket and org (talk HTTP)."""

from __future__ import annotations

import click

from coffer import __version__
from coffer.cli.admin import admin
from coffer.cli.bucket_policy import bucket_policy
from coffer.cli.federation import federation
from coffer.cli.keys import keys
from coffer.cli.lifecycle import lifecycle
from coffer.cli.management import bucket, org_group
from coffer.cli.policy import policy
from coffer.cli.serve import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="coffer")
def cli() -> None:
    """Coffer: an S3-compatible object store with CoreWeave-style access control."""


cli.add_command(serve)
cli.add_command(admin)
cli.add_command(federation)
cli.add_command(keys)
cli.add_command(policy)
cli.add_command(bucket)
bucket.add_command(bucket_policy)  # `coffer bucket policy` (coffer/cli/bucket_policy.py)
cli.add_command(org_group)
cli.add_command(lifecycle)


def main() -> None:
    cli(prog_name="coffer")
