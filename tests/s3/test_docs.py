"""docs/s3-compatibility.md lists every routed operation, with the status the code has."""

from __future__ import annotations

from pathlib import Path

from coffer.s3.handlers import HANDLERS
from coffer.s3.router import OPERATIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "s3-compatibility.md"


def _table() -> dict[str, tuple[str, str]]:
    rows: dict[str, tuple[str, str]] = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[2] in ("supported", "not yet", "never"):
            assert cells[0] not in rows, f"{cells[0]} is listed twice"
            rows[cells[0]] = (cells[1].strip("`"), cells[2])
    return rows


def test_every_operation_is_documented_with_its_status() -> None:
    rows = _table()
    assert set(rows) == set(OPERATIONS)
    for name, spec in OPERATIONS.items():
        action, status = rows[name]
        assert (status == "supported") == spec.implemented, name
        assert action == (spec.action or "—"), name


def test_every_supported_operation_has_a_handler() -> None:
    assert {n for n, s in OPERATIONS.items() if s.implemented} == set(HANDLERS)
