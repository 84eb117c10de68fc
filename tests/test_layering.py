"""The layers of docs/architecture.md stay apart, read from the source with `ast`.

Nothing is imported: every module under coffer/ is parsed and each of its imports is
resolved, wherever it sits (top level, inside a function, under `if TYPE_CHECKING`), in
every spelling (`import coffer.s3.x`, `from coffer.s3 import x`, `from coffer import s3`,
relative imports, `importlib.import_module("coffer.s3")`). The rules:

- the core (coffer/storage, coffer/policy, coffer/identity, coffer/auditlog, coffer/lifecycle)
  imports no face (coffer.s3, coffer.api, coffer.console), and never names `S3Error`: it
  raises its own errors and each face translates them;
- the control-plane API and the console do not import each other;
- coffer/federation (the pure verifiers) imports neither the store nor any face.

A failure lists every violation as `path:line`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "coffer"

CORE = ("coffer.storage", "coffer.policy", "coffer.identity", "coffer.auditlog", "coffer.lifecycle")
FACES = ("coffer.s3", "coffer.api", "coffer.console")
FACE_ERROR = "S3Error"
# (modules the rule applies to, what they must not import, why)
RULES: tuple[tuple[tuple[str, ...], tuple[str, ...], str], ...] = (
    (CORE, FACES, "the core must not depend on a face"),
    (("coffer.api",), ("coffer.console",), "the API must not depend on the console"),
    (("coffer.console",), ("coffer.api",), "the console must not depend on the API"),
    (
        ("coffer.federation",),
        ("coffer.store", *FACES),
        "coffer/federation is pure: no store, no face",
    ),
)
_IMPORT_FUNCTIONS = frozenset({"import_module", "__import__"})


@dataclass(frozen=True)
class Import:
    target: str  # the absolute dotted name imported
    line: int


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute module a `from <level dots><name> import ...` in `module` names."""
    if level == 0:
        return name or ""
    base = module.split(".")
    drop = level - 1 if is_package else level
    if drop:
        base = base[:-drop]
    return ".".join([*base, name] if name else base)


def imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[Import]:
    """Every module `tree` imports, anywhere in it; `from a import b` yields `a` and `a.b`
    (b may be a submodule: `from coffer import s3`)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, is_package, node.level, node.module)
            yield Import(source, node.lineno)
            for alias in node.names:
                if alias.name != "*":
                    yield Import(f"{source}.{alias.name}", node.lineno)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in _IMPORT_FUNCTIONS and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    yield Import(first.value, node.lineno)


def names_used(tree: ast.AST, wanted: str) -> Iterator[int]:
    """Lines where `wanted` is named: used, raised, caught, imported or read as an attribute."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == wanted:
            yield node.lineno
        elif isinstance(node, ast.Attribute) and node.attr == wanted:
            yield node.lineno
        elif isinstance(node, ast.ImportFrom | ast.Import):
            if any(alias.name == wanted or alias.name.endswith("." + wanted) for alias in node.names):
                yield node.lineno


@dataclass(frozen=True)
class Module:
    name: str
    where: str  # the path to report, from the repository root
    tree: ast.AST
    is_package: bool


def load(root: Path = PACKAGE) -> list[Module]:
    modules = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(root.parent).as_posix()
        modules.append(Module(module_name(path, root.parent), where, tree, path.name == "__init__.py"))
    return modules


def import_violations(modules: list[Module]) -> list[str]:
    found = []
    for m in modules:
        for owners, forbidden, why in RULES:
            if not within(m.name, owners):
                continue
            seen: set[tuple[int, str]] = set()
            for imp in imports(m.tree, m.name, m.is_package):
                if within(imp.target, forbidden):
                    # `from coffer.s3 import x` also yields coffer.s3.x: report the statement once.
                    key = (imp.line, next(p for p in forbidden if within(imp.target, (p,))))
                    if key not in seen:
                        seen.add(key)
                        found.append(f"{m.where}:{imp.line}: imports {imp.target} ({why})")
    return found


def error_violations(modules: list[Module]) -> list[str]:
    return [
        f"{m.where}:{line}: names {FACE_ERROR} (the core raises its own errors; a face translates them)"
        for m in modules
        if within(m.name, CORE)
        for line in sorted(set(names_used(m.tree, FACE_ERROR)))
    ]


@pytest.fixture(scope="module")
def modules() -> list[Module]:
    found = load()
    assert len(found) > 50, "coffer/ not found where the test expects it"
    return found


def test_layers_import_only_downwards(modules: list[Module]) -> None:
    violations = import_violations(modules)
    if violations:
        pytest.fail("layering violations:\n" + "\n".join(violations), pytrace=False)


def test_core_never_names_the_s3_error(modules: list[Module]) -> None:
    violations = error_violations(modules)
    if violations:
        pytest.fail(f"{FACE_ERROR} in the core:\n" + "\n".join(violations), pytrace=False)


# --- the checker itself -----------------------------------------------------------------------

BAD_STORAGE = '''\
"""A module breaking every rule, one way per line."""
import coffer.s3.app
from coffer import s3, api as control
from coffer.console.pages import render
from ..s3.responses import as_s3_error
from . import service
from coffer.errors import S3Error


def lazy():
    import importlib
    from coffer.api.http import call
    importlib.import_module("coffer.console")
    raise S3Error("NoSuchKey")


def caught(errors):
    try:
        pass
    except errors.S3Error:
        pass
'''


def _fake(tmp_path: Path, files: dict[str, str]) -> list[Module]:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return load(tmp_path / "coffer")


def test_the_checker_sees_every_spelling(tmp_path: Path) -> None:
    modules = _fake(
        tmp_path,
        {
            "coffer/__init__.py": "",
            "coffer/storage/__init__.py": "",
            "coffer/storage/bad.py": BAD_STORAGE,
            "coffer/storage/good.py": "from coffer.errors import CofferError\nfrom . import bad\n",
            "coffer/api/__init__.py": "",
            "coffer/api/x.py": "def f():\n    from coffer.console import pages\n",
            "coffer/console/__init__.py": "from ..api import http\n",
            "coffer/federation/__init__.py": "",
            # federation may name S3Error (it is not the core), but not import the store
            "coffer/federation/y.py": (
                "from coffer.store.db import Database\nfrom coffer.errors import S3Error\n"
            ),
        },
    )
    lines = sorted(import_violations(modules))
    got = {(v.split(":")[0], int(v.split(":")[1])) for v in lines}
    bad = "coffer/storage/bad.py"
    assert got == {
        (bad, 2),
        (bad, 3),
        (bad, 4),
        (bad, 5),
        (bad, 12),
        (bad, 13),
        ("coffer/api/x.py", 2),
        ("coffer/console/__init__.py", 1),
        ("coffer/federation/y.py", 1),
    }, lines
    # `from coffer import s3, api as control` breaks the rule twice on one line.
    assert sum(v.startswith(f"{bad}:3:") for v in lines) == 2
    errors = error_violations(modules)
    assert [v.split(": ")[0] for v in errors] == [f"{bad}:7", f"{bad}:14", f"{bad}:20"], errors


def test_relative_imports_resolve() -> None:
    assert _absolute("coffer.storage.bad", False, 2, "s3.responses") == "coffer.s3.responses"
    assert _absolute("coffer.storage.bad", False, 1, None) == "coffer.storage"
    assert _absolute("coffer.console", True, 2, "api") == "coffer.api"
    assert _absolute("coffer.console", True, 1, "pages") == "coffer.console.pages"
