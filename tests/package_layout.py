"""The distribution's layout as pyproject.toml declares it: which repository folder holds which `sam2_trt`
package, and the dotted module name of every source file (for the packaging and layering tests)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.conftest import REPO

_SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
LISTED_PACKAGES = set(_SETUPTOOLS["packages"])
PACKAGE_DIRS = {pkg: REPO / folder for pkg, folder in _SETUPTOOLS["package-dir"].items()}  # "sam2_trt.runtime" -> runtime/

# The floors of the house (sam2_trt.<part>), and what each may import. The data flows export -> engines ->
# runtime; jobs run the runtime over many videos; the server stands on the runtime; benchmarks measure them
# all; the CLI drives everything; core is the shared ground floor.
PARTS = ("core", "export", "engines", "runtime", "jobs", "serve", "benchmarks", "cli")
ALLOWED = {
    "core": {"core"},
    "export": {"core", "export"},
    "engines": {"core", "engines", "runtime"},
    "runtime": {"core", "runtime"},
    "jobs": {"core", "runtime", "jobs"},
    "serve": {"core", "runtime", "serve"},
    "benchmarks": {"core", "export", "engines", "runtime", "jobs", "benchmarks"},
    "cli": set(PARTS),
}


def module_name(path: Path) -> str:
    """Dotted name of a source file under one of the package folders, e.g. runtime/video/bank.py ->
    sam2_trt.runtime.video.bank; sam2_trt/cli/__init__.py -> sam2_trt.cli."""
    path = path.resolve()
    best = None
    for pkg, folder in PACKAGE_DIRS.items():
        if path.is_relative_to(folder.resolve()) and (best is None or len(folder.parts) > len(best[1].parts)):
            best = (pkg, folder.resolve())
    if best is None:
        raise ValueError(f"{path} is in no package folder of pyproject.toml")
    rel = path.relative_to(best[1]).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([best[0], *parts])


def source_files() -> list[Path]:
    """Every .py file the distribution ships, once (the namespace root's folder holds core/ and cli/)."""
    files = set()
    for folder in PACKAGE_DIRS.values():
        files.update(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)
    return sorted(files)


def part_of(module: str) -> str | None:
    """"sam2_trt.runtime.video.bank" -> "runtime"; the namespace root itself -> "root"; other names -> None."""
    parts = module.split(".")
    if parts[0] != "sam2_trt":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in PARTS else "root"
