"""Data flows one way: sam2_export -> engines -> runtime. Nothing downstream imports anything upstream, and the
runtime never imports torch (checked on the source, so a lazy import inside a function counts too)."""

import ast

import pytest

from tests.conftest import REPO

FORBIDDEN = {
    "runtime": {"torch", "torchvision", "sam2", "sam2_export", "engines"},
    "engines": {"torch", "torchvision", "sam2", "sam2_export"},
}


def imported_modules(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upstream_imports(package):
    bad = {(str(p.relative_to(REPO)), m) for p in (REPO / package).rglob("*.py")
           for m in imported_modules(p) if m in FORBIDDEN[package]}
    assert not bad, sorted(bad)
