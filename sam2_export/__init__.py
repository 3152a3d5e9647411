"""sam2-trt exporter: official SAM 2 / SAM 2.1 checkpoints -> four validated ONNX graphs.

Importing this package does not import torch; `export_model` does.
"""

from .configs import ALL_MODELS, ModelName, resolve_model_name
from .errors import ExportError


def export_model(*args, **kwargs):
    """See sam2_export.exporter.export_model."""
    from .exporter import export_model as _export

    return _export(*args, **kwargs)


__all__ = ["ALL_MODELS", "ExportError", "ModelName", "export_model", "resolve_model_name"]
