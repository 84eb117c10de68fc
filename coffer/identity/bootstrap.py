"""First start: one organization, an admin holding Object Storage Admin, a starter access
policy giving that admin full S3 access, and a token.

The starter policy (`coffer-bootstrap-admin-s3`) is an ordinary organization policy: it
can be edited or deleted like any other. Object Storage Admin grants every `cwobject:`
action but nothing on S3 (reference §3.4), so without it the admin could mint keys that
S3 refuses. It is created only by the start that creates the admin: stores bootstrapped
before policies existed get no policy (apply one with `coffer policy apply`), and a
deliberately deleted starter policy never comes back.

Several processes may start at once on one store (workers, nodes, an admin command run
beside a starting server), so the check-and-create runs under a lock that spans them:
a PostgreSQL advisory lock, or a file lock in the data directory for SQLite.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from coffer.audit import Actor
from coffer.datadir import make_private_dir
from coffer.identity.directory import Directory
from coffer.identity.models import Organization, User
from coffer.identity.policies import OrgPolicies
from coffer.policy import parse_org_policy

ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name
BOOTSTRAP_ADMIN = "admin"
STARTER_POLICY = "coffer-bootstrap-admin-s3"
_PG_BOOTSTRAP_LOCK = 0x0C0FFE13
BOOTSTRAP_ACTOR = Actor("bootstrap")


@dataclass(frozen=True)
class Bootstrap:
    org: Organization
    admin: User
    token_path: Path | None  # set only on the start that created it


@contextlib.contextmanager
def _exclusive(directory: Directory, data_dir: Path) -> Iterator[None]:
    """Hold the bootstrap lock: one creator, however many processes start together."""
    db = directory.db
    if db.dialect == "postgresql":
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_BOOTSTRAP_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_BOOTSTRAP_LOCK})
                conn.commit()
        return
    run = data_dir / "run"
    make_private_dir(run)
    fd = os.open(run / "bootstrap.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_private(path: Path, text: str) -> None:
    """Create `path` readable by its owner only; the content is a credential."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)  # in case a umask or an old file got in the way
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def starter_policy(admin: User) -> dict[str, object]:
    """The organization policy the first start creates: the bootstrap admin may do anything on S3."""
    return {
        "version": "v1alpha1",
        "name": STARTER_POLICY,
        "statements": [
            {
                "name": "bootstrap-admin-full-s3",
                "effect": "Allow",
                "actions": ["s3:*"],
                "resources": ["*"],
                "principals": [admin.principal_name],
            }
        ],
    }


def bootstrap(directory: Directory, data_dir: Path, policies: OrgPolicies) -> Bootstrap:
    """Idempotent: only the first call on an empty store creates anything.

    Resumes a bootstrap that a crash interrupted (an organization without its admin).
    """
    with _exclusive(directory, data_dir):
        orgs = directory.list_orgs()
        org = orgs[0] if orgs else directory.create_org("default")
        users = directory.list_users(org.id)
        existing = [u for u in users if u.name == BOOTSTRAP_ADMIN] or [
            u for u in users if u.has_storage_admin
        ]
        if existing:
            return Bootstrap(org, existing[0], None)
        admin = directory.create_user(org.id, BOOTSTRAP_ADMIN, storage_admin=True)
        policies.ensure(org.id, parse_org_policy(starter_policy(admin)), actor=BOOTSTRAP_ACTOR)
        plain, _ = directory.create_token(admin.id, name="bootstrap", actor=BOOTSTRAP_ACTOR)
        path = data_dir / ADMIN_TOKEN_FILE
        make_private_dir(data_dir)
        _write_private(path, plain + "\n")
        return Bootstrap(org, admin, path)
