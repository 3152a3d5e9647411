"""The house has floors: cli -> {benchmarks, serve} -> {export, engines, jobs -> runtime} -> core (serve on
the runtime only), with the data flowing
export -> engines -> runtime. No import runs back up, between any two parts, and the runtime and core never
import torch (checked on the source, so a lazy import inside a function counts too)."""

import ast
import itertools

import pytest

from tests.package_layout import ALLOWED, PARTS, module_name, part_of, source_files

# Third-party names a part must never import, not even lazily.
FORBIDDEN_THIRD_PARTY = {
    "core": {"torch", "torchvision", "sam2", "onnx", "onnxruntime", "tensorrt", "cuda"},
    "runtime": {"torch", "torchvision", "sam2", "onnx"},
    "serve": {"torch", "torchvision", "sam2", "onnx", "tensorrt"},
    "engines": {"torch", "torchvision", "sam2"},
    "jobs": {"torch", "torchvision", "sam2", "onnx"},
}
# The folders' own names: importable only from a checkout's root, never from an install.
NOT_IMPORT_NAMES = {"runtime", "engines", "benchmarks", "sam2_export", "sam2_trt_kernels"}


def imports_of(source: str, module: str, is_package: bool):
    """Absolute names imported by a module's source (relative imports resolved against `module`)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)  # `from sam2_trt import runtime`


def _all_imports():
    found = []
    for path in source_files():
        module = module_name(path)
        for name in imports_of(path.read_text(), module, path.name == "__init__.py"):
            found.append((path, module, name))
    return found


IMPORTS = _all_imports()


def cross_part_imports(importer: str, imported: str) -> list:
    return sorted({(str(p), name) for p, module, name in IMPORTS
                   if part_of(module) == importer and part_of(name) == imported})


FORBIDDEN_PAIRS = [(a, b) for a, b in itertools.product(PARTS, PARTS) if b not in ALLOWED[a]]


@pytest.mark.parametrize("importer,imported", FORBIDDEN_PAIRS)
def test_no_import_runs_back_up(importer, imported):
    assert not cross_part_imports(importer, imported), \
        f"{importer} must not import {imported}: {cross_part_imports(importer, imported)}"


def test_the_floors_have_no_circle():
    """No two parts may import each other: of every pair, at least one direction is forbidden."""
    for a, b in itertools.combinations(PARTS, 2):
        assert not (b in ALLOWED[a] and a in ALLOWED[b]), (a, b)


def test_the_namespace_root_only_hands_on_the_runtime():
    bad = sorted({(str(p), name) for p, module, name in IMPORTS
                  if part_of(module) == "root" and part_of(name) not in (None, "root", "runtime")})
    assert not bad


@pytest.mark.parametrize("part", sorted(FORBIDDEN_THIRD_PARTY))
def test_no_forbidden_third_party_imports(part):
    bad = sorted({(str(p), name) for p, module, name in IMPORTS
                  if part_of(module) == part and name.split(".")[0] in FORBIDDEN_THIRD_PARTY[part]})
    assert not bad, bad


def test_nothing_imports_the_folder_names():
    """`import runtime` works only with the repository root on sys.path, never from an install."""
    bad = sorted({(str(p), name) for p, module, name in IMPORTS if name.split(".")[0] in NOT_IMPORT_NAMES})
    assert not bad, bad


def test_the_checker_sees_lazy_relative_and_upward_imports():
    source = "def f():\n    from ...engines.builder import build_engines\n    from sam2_trt import cli\n"
    names = set(imports_of(source, "sam2_trt.runtime.video.session", is_package=False))
    assert {"sam2_trt.engines.builder", "sam2_trt.cli"} <= names
    assert {part_of(n) for n in names} >= {"engines", "cli"}
