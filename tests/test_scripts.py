"""Benchmark and experiment scripts stay runnable, and share code only through importable modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("benchmarks", "experiments")


def _scripts() -> list[Path]:
    """Every file of the script folders that runs as a script (it has an ``if __name__ == "__main__"``)."""
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).glob("*.py")
                  if '__name__ == "__main__"' in p.read_text(encoding="utf-8"))


def _imports_of(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every ``import`` and ``from ... import`` in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "." * node.level + (node.module or ""), [a.name for a in node.names]))
    return found


def test_there_are_benchmarks_and_experiments() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in _scripts()}
    assert "benchmarks/bench_scan.py" in names and "experiments/inspect_errors.py" in names, names


def test_scripts_import_no_sibling_file_and_no_private_name() -> None:
    # `python benchmarks/x.py` puts benchmarks/ on sys.path, so `from inspect_errors import _f` works by
    # accident; shared pieces belong in an importable module (fieldtruth.experiments.heldout,
    # fieldtruth.tests).
    siblings = {p.stem for folder in FOLDERS for p in (ROOT / folder).glob("*.py")}
    problems = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).glob("*.py")):
            for line, module, names in _imports_of(path):
                where = f"{path.relative_to(ROOT)}:{line}"
                if module.split(".")[0] in siblings or module.startswith("."):
                    problems.append(f"{where}: imports {module!r} by its file name; "
                                    f"import it as fieldtruth.{folder}.NAME")
                if module.startswith("fieldtruth.") and any(n.startswith("_") for n in names):
                    problems.append(f"{where}: imports private name(s) {names!r} from {module!r}")
    assert not problems, "\n".join(problems)


#: Runs each script given on the command line as ``__main__`` with ``--help``, in one process (imports are
#: shared, so ten scripts cost about one), and prints ``name exit-code`` per script.
HELP_DRIVER = """
import contextlib, io, runpy, sys
for script in sys.argv[1:]:
    sys.argv = [script, "--help"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    print(script, code, "usage:" in out.getvalue())
"""


@pytest.mark.slow
def test_every_script_shows_its_help() -> None:
    scripts = [str(p) for p in _scripts()]
    result = subprocess.run([sys.executable, "-c", HELP_DRIVER, *scripts], capture_output=True, text=True,
                            cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    shown = result.stdout.splitlines()
    assert shown == [f"{script} 0 True" for script in scripts], result.stdout + result.stderr
