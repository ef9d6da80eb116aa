"""The rooms import each other only in the directions DESIGN.md allows (imports point down the stack).

Every module's imports are read with :mod:`ast` (top-level and inside functions, ``import x`` and
``from x import y`` forms, and ``importlib.import_module("...")`` with a literal name) and checked
against :data:`ALLOWED`. Package-level modules (``errors.py`` and its siblings at the repository root)
import no room and may be imported by every room; tests, benchmarks and experiments are free.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "fieldtruth"

#: What each room may import, from DESIGN.md ("Imports point down a stack and never back up").
ALLOWED: dict[str, frozenset[str]] = {
    "ingest": frozenset(),
    "imagery": frozenset({"ingest"}),
    "detectors": frozenset({"imagery", "ingest"}),
    "review": frozenset(),
    "maps": frozenset({"review", "ingest"}),
    "pipelines": frozenset({"ingest", "imagery", "detectors", "review", "maps"}),
}
#: Folders outside the rules: they may import anything.
FREE = frozenset({"tests", "benchmarks", "experiments"})
#: Folders that are not source: build outputs.
SKIP = frozenset({"build", "dist", "__pycache__"})


class Violation(NamedTuple):
    """One forbidden import: where it is, and which room it reaches."""

    module: str
    line: int
    imported: str
    reason: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: imports {self.imported} ({self.reason})"


def _owner(root: Path, path: Path) -> str | None:
    """The room a source file belongs to, ``""`` for a package-level module, None for free folders.

    Raises:
        ValueError: the file is in a folder DESIGN.md does not list (a new room must join :data:`ALLOWED`).
    """
    parts = path.relative_to(root).parts
    if len(parts) == 1:
        return ""
    if parts[0] in FREE:
        return None
    if parts[0] not in ALLOWED:
        raise ValueError(f"{str(path)!r} is in folder {parts[0]!r}, which is neither a room nor free; add "
                         "the room and what it may import to ALLOWED in tests/test_room_imports.py "
                         "(and to DESIGN.md)")
    return parts[0]


def _module_name(root: Path, path: Path) -> list[str]:
    """The dotted name of a source file's package, as a list (``fieldtruth.maps.vendor`` for its modules)."""
    return [PACKAGE, *path.relative_to(root).parent.parts]


def _imported_names(tree: ast.AST, package: list[str]) -> Iterator[tuple[int, str]]:
    """Every module name a tree imports, absolute, with its line (relative imports resolved)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from fieldtruth import maps` imports the room maps: count each name as a module too
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.lineno, node.args[0].value


def _room_of(name: str) -> str | None:
    """The room an absolute module name lies in (``fieldtruth.maps.risk`` -> ``maps``), else None."""
    parts = name.split(".")
    if len(parts) >= 2 and parts[0] == PACKAGE and parts[1] in ALLOWED:
        return parts[1]
    return None


def _sources(root: Path) -> Iterator[tuple[Path, str]]:
    """Every source file under the rules, with its room (``""`` for a package-level module)."""
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if any(part.startswith(".") or part in SKIP or part.endswith(".egg-info") for part in parts):
            continue
        owner = _owner(root, path)
        if owner is not None:
            yield path, owner


def room_import_violations(root: Path) -> list[Violation]:
    """Every import under ``root`` (the repository root) that DESIGN.md's directions do not allow.

    Args:
        root: the repository root, i.e. the folder that is the ``fieldtruth`` package.

    Returns:
        The violations, sorted by module and line; empty when the house keeps to its directions.
    """
    found: set[Violation] = set()
    for path, owner in _sources(root):
        relative = path.relative_to(root)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, name in _imported_names(tree, _module_name(root, path)):
            room = _room_of(name)
            if room is None or room == owner:
                continue
            if owner == "":
                reason = "a package-level module imports no room"
            elif room not in ALLOWED[owner]:
                allowed = ", ".join(sorted(ALLOWED[owner])) or "no other room"
                reason = f"{owner} may import {allowed}"
            else:
                continue
            found.add(Violation(str(relative), line, f"{PACKAGE}.{room}", reason))
    return sorted(found)


def test_the_rooms_import_only_what_design_allows() -> None:
    checked = {owner for _, owner in _sources(ROOT)}
    assert checked == {"", *ALLOWED}, f"the check must see every room and errors.py; it saw {sorted(checked)}"
    violations = room_import_violations(ROOT)
    assert not violations, "imports against DESIGN.md's directions:\n" + "\n".join(map(str, violations))


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_check_finds_a_planted_upward_import_in_any_form(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "errors.py": "class FieldtruthError(Exception): ...\n",
        "ingest/__init__.py": "",
        "ingest/scene.py": "from fieldtruth.errors import FieldtruthError\n",
        "imagery/read.py": "import fieldtruth.ingest.scene\n",
        "detectors/train.py": "from fieldtruth.imagery import read\nfrom fieldtruth.ingest.scene import x\n",
        "maps/risk.py": (
            "from fieldtruth.review.ledger import Ledger\n\n\n"
            "def f():\n    from fieldtruth import detectors\n"
        ),
        "review/ledger.py": "import importlib\n\nimportlib.import_module('fieldtruth.maps.risk')\n",
        "ingest/aoi.py": "from ..imagery.grid import TileGrid\n",
        "pipelines/scan.py": "from fieldtruth.maps import risk\nfrom fieldtruth.detectors import train\n",
        "runfiles.py": "import fieldtruth.pipelines.scan as s\n",
        "tests/test_x.py": "from fieldtruth.pipelines import scan\n",
        "benchmarks/bench.py": "import fieldtruth.maps\n",
        "experiments/try.py": "import fieldtruth.maps\n",
    })
    assert [str(v) for v in room_import_violations(root)] == [
        "ingest/aoi.py:1: imports fieldtruth.imagery (ingest may import no other room)",
        "maps/risk.py:5: imports fieldtruth.detectors (maps may import ingest, review)",
        "review/ledger.py:3: imports fieldtruth.maps (review may import no other room)",
        "runfiles.py:1: imports fieldtruth.pipelines (a package-level module imports no room)",
    ]


def test_the_check_refuses_a_folder_design_does_not_list(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"ingest/scene.py": "", "training/fit.py": "import fieldtruth.maps\n"})
    with pytest.raises(ValueError, match="'training', which is neither a room nor free"):
        room_import_violations(root)


def test_the_check_passes_a_tree_that_keeps_to_the_directions(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "errors.py": "",
        "maps/leads.py": (
            "from fieldtruth.errors import FieldtruthError\n"
            "from fieldtruth.maps.vendor import x\n"
        ),
        "maps/vendor/__init__.py": "from fieldtruth.maps import leads\n",
        "detectors/data.py": (
            "def f():\n    import fieldtruth.imagery.read\n    from fieldtruth.ingest import scene\n"
        ),
    })
    assert room_import_violations(root) == []
