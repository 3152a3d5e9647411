"""Naming of the eight official SAM 2 / SAM 2.1 models: short names, checkpoint-style names, config paths.

Torch-free, so the CLI can validate a name before anything heavy is imported.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ExportError

FAMILIES = ("sam2.1", "sam2")
SIZES = {  # short size -> checkpoint-style long size
    "t": "tiny",
    "s": "small",
    "b+": "base_plus",
    "l": "large",
}


@dataclass(frozen=True)
class ModelName:
    family: str  # "sam2" or "sam2.1"
    size: str  # "t", "s", "b+" or "l"

    @property
    def short(self) -> str:
        return f"{self.family}_hiera_{self.size}"

    @property
    def long(self) -> str:
        """The official checkpoint stem, e.g. sam2.1_hiera_base_plus."""
        return f"{self.family}_hiera_{SIZES[self.size]}"

    @property
    def config_path(self) -> str:
        """Hydra config name inside the `sam2` package."""
        return f"configs/{self.family}/{self.short}.yaml"


ALL_MODELS = tuple(ModelName(f, s) for f in FAMILIES for s in SIZES)


def _aliases(m: ModelName) -> set:
    names = {m.short, m.long, m.config_path, m.config_path[len("configs/"):], f"{m.short}.yaml",
             m.long.replace("_", "-"), f"{m.long}.pt"}
    return {n.lower() for n in names}


def resolve_model_name(name: str) -> ModelName:
    """Accepts `sam2.1_hiera_t`, `sam2.1_hiera_tiny`, `configs/sam2.1/sam2.1_hiera_t.yaml`, ... (case-insensitive).

    Raises ExportError listing the valid names for anything else.
    """
    key = str(name).strip().lower()
    if key.startswith("sam2/") or key.startswith("./"):
        key = key.split("/", 1)[1] if key.startswith("./") else key
    for m in ALL_MODELS:
        if key in _aliases(m):
            return m
    valid = ", ".join(m.short for m in ALL_MODELS)
    raise ExportError(
        f"unknown config {name!r}. Valid names: {valid} (or their checkpoint-style names such as "
        f"sam2.1_hiera_base_plus, or official paths such as configs/sam2.1/sam2.1_hiera_t.yaml)",
        code=ExportError.BAD_INPUT,
    )
