"""Packaging: every sub-package is listed and shipped, conda and pip agree, and the lint rule holds."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ROOMS = ("ingest", "imagery", "detectors", "pipelines", "review", "maps")
SKIP_DIRS = {
    ".venv",
    "build",
    "dist",
    ".git",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "fieldtruth-demo",
}


def _package_dirs() -> set[str]:
    found = set()
    for init in ROOT.rglob("__init__.py"):
        parts = init.relative_to(ROOT).parent.parts
        hidden = any(p.startswith(".") for p in parts)  # a tool's or a developer's folder, never a package
        if parts and not hidden and not SKIP_DIRS.intersection(parts) and not any(
                p.endswith(".egg-info") for p in parts):
            found.add(".".join(("fieldtruth", *parts)))
    return found


def test_every_subpackage_is_listed_in_pyproject() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    missing = _package_dirs() - listed
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"
    for room in ROOMS:
        assert f"fieldtruth.{room}" in listed
        assert (ROOT / room / "__init__.py").exists()
        assert (ROOT / room / "errors.py").exists(), f"room {room} needs an errors.py"


def test_no_root_init_makes_fieldtruth_a_namespace_package() -> None:
    assert not (ROOT / "__init__.py").exists()
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"fieldtruth": "."}


def _names(requirements: list[str]) -> set[str]:
    names = set()
    for req in requirements:
        match = re.match(r"\s*([A-Za-z0-9_.\-]+)(\[([^\]]+)\])?", req)
        assert match, req
        names.add(match.group(1).lower().replace("_", "-"))
        if match.group(3):
            names.update(x.strip().lower() for x in match.group(3).split(","))
    return names


def test_environment_yml_lists_the_same_dependencies_as_pyproject() -> None:
    import yaml

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str) and not d.startswith(("python", "pip"))]
    pip_part = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    declared = _names(PYPROJECT["project"]["dependencies"])
    in_env = _names(conda) | _names([p for p in pip_part if not p.startswith("-")])
    assert declared == in_env, (
        f"only in pyproject: {declared - in_env}; only in environment.yml: {in_env - declared}"
    )
    assert "torch==2.14.1" in pip_part and "torchvision==0.29.1" in pip_part


def test_ruff_forbids_top_level_room_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import maps\nfrom imagery.grid import TileGrid\n")
    good = tmp_path / "good.py"
    good.write_text("import fieldtruth.maps\nfrom fieldtruth.imagery.grid import TileGrid\n")
    ruff = [
        sys.executable,
        "-m",
        "ruff",
        "check",
        "--no-cache",
        "--config",
        str(ROOT / "pyproject.toml"),
        "--select",
        "TID",
    ]
    result = subprocess.run([*ruff, str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "import fieldtruth.maps, not maps" in result.stdout
    assert "import fieldtruth.imagery, not imagery" in result.stdout
    assert subprocess.run([*ruff, str(good)], capture_output=True, text=True).returncode == 0


@pytest.mark.slow
def test_wheel_ships_every_subpackage_and_its_cli_runs(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("fieldtruth-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in PYPROJECT["tool"]["setuptools"]["packages"]:
        folder = package.replace(".", "/")
        assert any(n.startswith(folder + "/") for n in names), f"{package} is missing from the wheel"
    assert "fieldtruth/errors.py" in names
    assert "fieldtruth/maps/vendor/leaflet.js" in names

    # A clean venv holding only the wheel; dependencies come from this environment via a .pth file.
    env = tmp_path / "venv"
    venv.create(env, with_pip=False)
    site = next(env.glob("lib/python*/site-packages"))
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "deps.pth").write_text("\n".join(deps) + "\n")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    code = ("import fieldtruth.pipelines.cli as c, sys; print(c.__file__); "
            "sys.argv=['fieldtruth','--help']; c.main()")
    result = subprocess.run(
        [str(env / "bin" / "python"), "-c", code], capture_output=True, text=True, cwd=tmp_path, env=clean
    )
    assert result.returncode == 0, result.stderr
    assert str(site) in result.stdout, "the CLI must come from the installed wheel, not the source tree"
    assert "scan" in result.stdout and "demo" in result.stdout
