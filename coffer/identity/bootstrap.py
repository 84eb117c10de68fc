"""First start: one organization, an admin holding Object Storage Admin, and a token."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from coffer.identity.directory import Directory
from coffer.identity.models import Organization, User

ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name
BOOTSTRAP_ADMIN = "admin"


@dataclass(frozen=True)
class Bootstrap:
    org: Organization
    admin: User
    token_path: Path | None  # set only on the start that created it


def bootstrap(directory: Directory, data_dir: Path) -> Bootstrap:
    """Idempotent: only the first call on an empty store creates anything."""
    orgs = directory.list_orgs()
    if orgs:
        org = orgs[0]
        admins = [u for u in directory.list_users(org.id) if u.has_storage_admin]
        admin = admins[0] if admins else directory.list_users(org.id)[0]
        return Bootstrap(org, admin, None)
    org = directory.create_org("default")
    admin = directory.create_user(org.id, BOOTSTRAP_ADMIN, storage_admin=True)
    plain, _ = directory.create_token(admin.id, name="bootstrap")
    path = data_dir / ADMIN_TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(plain + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, 0o600)
    return Bootstrap(org, admin, path)
