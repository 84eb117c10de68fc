"""Inventory configurations: what report a bucket asks for, checked and stored.

A configuration (S3's `InventoryConfiguration`) names the report's source filter, the
destination bucket and prefix, its format, which versions and which optional fields it
lists, and how often it runs. The faces parse the wire format; the rules that hold on
every face live here (`validate`, `InventoryConfigs.put`), so the S3 endpoint and any
later face cannot differ. The report itself is `coffer.lifecycle.inventory_report`.

Destination rule (docs/decisions/0170-inventory-reports.md): the destination bucket must
exist and belong to the source bucket's organization (Coffer has no cross-account bucket
policy for the inventory service to be granted), may be the source itself, and may not be
a reserved `cw-` bucket; reports written there count against its usage and caps.
"""

from __future__ import annotations

import builtins
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coffer.storage.buckets import Buckets
from coffer.storage.errors import (
    InvalidArgument,
    NoSuchBucket,
    NoSuchInventoryConfiguration,
    TooManyConfigurations,
)
from coffer.storage.reserved import is_reserved
from coffer.storage.rows import as_utc
from coffer.storage.rules import MAX_KEY_BYTES, utcnow
from coffer.storage.transact import Transactions
from coffer.store.schema import inventory_configs

MAX_CONFIGURATIONS = 1000  # per bucket, as on AWS
MAX_LIST = 100  # ListBucketInventoryConfigurations answers at most 100 per page, as AWS
MAX_PREFIX_BYTES = 512  # a destination prefix leaves room for `<bucket>/<id>/data/<uuid>...`

ARN_PREFIX = "arn:aws:s3:::"
FORMATS = ("CSV", "TSV", "JSON")  # TSV and JSON (lines) are CoreWeave's and Coffer's additions
REFUSED_FORMATS = {
    "ORC": "Coffer does not write ORC inventory reports; use CSV, TSV or JSON.",
    "Parquet": "Coffer does not write Parquet inventory reports; use CSV, TSV or JSON.",
}
FREQUENCIES = {"Daily": 1, "Weekly": 7}  # rule-days between reports
VERSIONS = ("All", "Current")
# The optional fields Coffer has the data for, in the order AWS writes its columns.
OPTIONAL_FIELDS = (
    "Size",
    "LastModifiedDate",
    "ETag",
    "StorageClass",
    "IsMultipartUploaded",
    "ChecksumAlgorithm",
    "ObjectOwner",
)
_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ACCOUNT = re.compile(r"[A-Za-z0-9._:/-]{1,64}")


@dataclass(frozen=True)
class InventoryConfig:
    id: str
    enabled: bool
    destination_bucket: str  # a bucket name (an `arn:aws:s3:::` ARN on the wire)
    format: str  # CSV | TSV | JSON
    frequency: str  # Daily | Weekly
    included_versions: str  # All | Current
    prefix: str | None = None  # Filter/Prefix: only keys that begin with it
    destination_prefix: str | None = None
    account_id: str | None = None
    optional_fields: tuple[str, ...] = field(default_factory=tuple)

    def fields(self) -> tuple[str, ...]:
        """The report's columns, in AWS's order (`fileSchema`)."""
        head: tuple[str, ...] = ("Bucket", "Key")
        if self.included_versions == "All":
            head += ("VersionId", "IsLatest", "IsDeleteMarker")
        return head + tuple(f for f in OPTIONAL_FIELDS if f in self.optional_fields)

    def period(self, day_seconds: float) -> timedelta:
        return timedelta(seconds=FREQUENCIES[self.frequency] * day_seconds)


def _bad(detail: str, argument: str, value: str) -> InvalidArgument:
    return InvalidArgument(detail, argument=argument, value=value[:256])


def destination_name(arn: str) -> str:
    """The bucket an `arn:aws:s3:::<name>` names; InvalidArgument for anything else."""
    if not arn.startswith(ARN_PREFIX) or not arn[len(ARN_PREFIX) :] or "/" in arn[len(ARN_PREFIX) :]:
        raise _bad("The destination bucket must be an ARN of the form arn:aws:s3:::bucket.", "Bucket", arn)
    return arn[len(ARN_PREFIX) :]


def validate(config: InventoryConfig) -> None:
    """AWS's value checks (InvalidArgument); the shape (missing elements) is the face's."""
    if not _ID.fullmatch(config.id):
        raise _bad("The inventory id must be 1 to 64 letters, digits, '.', '_' or '-'.", "Id", config.id)
    if config.format in REFUSED_FORMATS:
        raise _bad(REFUSED_FORMATS[config.format], "Format", config.format)
    if config.format not in FORMATS:
        raise _bad(f"Invalid inventory format: {config.format}.", "Format", config.format)
    if config.frequency not in FREQUENCIES:
        raise _bad(f"Invalid schedule frequency: {config.frequency}.", "Frequency", config.frequency)
    if config.included_versions not in VERSIONS:
        raise _bad(
            f"Invalid IncludedObjectVersions: {config.included_versions}.",
            "IncludedObjectVersions",
            config.included_versions,
        )
    for name in config.optional_fields:
        if name not in OPTIONAL_FIELDS:
            raise _bad(f"Coffer does not support the inventory field {name}.", "Field", name)
    if len(set(config.optional_fields)) != len(config.optional_fields):
        raise _bad("An optional field is listed twice.", "Field", ",".join(config.optional_fields))
    if config.prefix is not None and len(config.prefix.encode()) > MAX_KEY_BYTES:
        raise _bad("The filter prefix is longer than a key may be.", "Prefix", config.prefix)
    dest = config.destination_prefix
    if dest is not None and (len(dest.encode()) > MAX_PREFIX_BYTES or "\0" in dest):
        raise _bad(f"The destination prefix must be at most {MAX_PREFIX_BYTES} bytes.", "Prefix", dest)
    if config.account_id is not None and not _ACCOUNT.fullmatch(config.account_id):
        raise _bad("The destination AccountId is not valid.", "AccountId", config.account_id)


def dumps(config: InventoryConfig) -> str:
    return json.dumps(asdict(config), separators=(",", ":"))


def loads(text: str) -> InventoryConfig:
    data = json.loads(text)
    data["optional_fields"] = tuple(data.get("optional_fields") or ())
    return InventoryConfig(**data)


@dataclass(frozen=True)
class Stored:
    """A configuration with its bucket and the time of its last report (None: never)."""

    bucket: str
    config: InventoryConfig
    last_report_at: datetime | None


class InventoryConfigs:
    """The inventory configurations of every bucket (`storage.inventory`)."""

    def __init__(self, tx: Transactions, buckets: Buckets) -> None:
        self.tx = tx
        self.db = tx.db
        self.buckets = buckets

    def put(self, bucket: str, config: InventoryConfig) -> None:
        """Create or replace `config.id` on `bucket` (see the module's destination rule)."""
        validate(config)
        source = self.buckets.get(bucket)
        try:
            destination = self.buckets.get(config.destination_bucket)
        except NoSuchBucket:
            raise _bad(
                "The destination bucket does not exist.", "Bucket", ARN_PREFIX + config.destination_bucket
            ) from None
        if destination.org_id != source.org_id or is_reserved(destination.name):
            raise _bad(
                "The destination bucket must be a bucket of the source bucket's organization.",
                "Bucket",
                ARN_PREFIX + config.destination_bucket,
            )
        now = utcnow()
        document = dumps(config)
        key = (inventory_configs.c.bucket == bucket) & (inventory_configs.c.config_id == config.id)

        def tx(conn: Connection) -> None:
            self.tx.lock_bucket(conn, bucket)  # against a concurrent DeleteBucket; refuses cw- buckets
            if conn.execute(sa.select(inventory_configs.c.config_id).where(key)).first() is not None:
                conn.execute(inventory_configs.update().where(key).values(document=document, updated_at=now))
                return
            count = conn.execute(
                sa.select(sa.func.count()).where(inventory_configs.c.bucket == bucket)
            ).scalar_one()
            if count >= MAX_CONFIGURATIONS:
                raise TooManyConfigurations()
            conn.execute(
                inventory_configs.insert().values(
                    bucket=bucket, config_id=config.id, document=document, created_at=now, updated_at=now
                )
            )

        self.tx.run(tx)

    def get(self, bucket: str, config_id: str) -> InventoryConfig:
        self.buckets.get(bucket)
        with self.db.query() as conn:
            row = conn.execute(
                sa.select(inventory_configs.c.document).where(
                    inventory_configs.c.bucket == bucket, inventory_configs.c.config_id == config_id
                )
            ).first()
        if row is None:
            raise NoSuchInventoryConfiguration()
        return loads(row.document)

    def list(self, bucket: str, *, after: str = "", limit: int = MAX_LIST) -> builtins.list[InventoryConfig]:
        """Configurations by id after `after`; at most `limit` of them."""
        self.buckets.get(bucket)
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(inventory_configs.c.document)
                .where(inventory_configs.c.bucket == bucket, inventory_configs.c.config_id > after)
                .order_by(inventory_configs.c.config_id)
                .limit(limit)
            ).all()
        return [loads(r.document) for r in rows]

    def delete(self, bucket: str, config_id: str) -> None:
        self.buckets.get(bucket)

        def tx(conn: Connection) -> int:
            return conn.execute(
                inventory_configs.delete().where(
                    inventory_configs.c.bucket == bucket, inventory_configs.c.config_id == config_id
                )
            ).rowcount

        if not self.tx.run(tx):
            raise NoSuchInventoryConfiguration()

    def buckets_with_reports(self) -> builtins.list[str]:
        """Buckets that have at least one configuration."""
        with self.db.read() as conn:
            return list(
                conn.execute(
                    sa.select(inventory_configs.c.bucket).distinct().order_by(inventory_configs.c.bucket)
                ).scalars()
            )

    def due(self, bucket: str, now: datetime, day_seconds: float) -> builtins.list[Stored]:
        """The bucket's enabled configurations whose next report is due at `now`, by id."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(inventory_configs)
                .where(inventory_configs.c.bucket == bucket)
                .order_by(inventory_configs.c.config_id)
            ).all()
        found = []
        for row in rows:
            config = loads(row.document)
            last = as_utc(row.last_report_at) if row.last_report_at is not None else None
            if config.enabled and (last is None or now - last >= config.period(day_seconds)):
                found.append(Stored(bucket, config, last))
        return found

    def stored(self, bucket: str, config_id: str) -> Stored | None:
        """The configuration as it is now (None: deleted since), with its last report time."""
        with self.db.query() as conn:
            row = conn.execute(
                sa.select(inventory_configs).where(
                    inventory_configs.c.bucket == bucket, inventory_configs.c.config_id == config_id
                )
            ).first()
        if row is None:
            return None
        last = as_utc(row.last_report_at) if row.last_report_at is not None else None
        return Stored(bucket, loads(row.document), last)

    def reported(self, bucket: str, config_id: str, at: datetime) -> None:
        """`config_id`'s report of `at` was written (or given up): the next is due a period later."""

        def tx(conn: Connection) -> None:
            conn.execute(
                inventory_configs.update()
                .where(inventory_configs.c.bucket == bucket, inventory_configs.c.config_id == config_id)
                .values(last_report_at=at)
            )

        self.tx.run(tx)
