"""sam2-trt runtime: SAM 2 inference on exported graphs, without PyTorch.

    from sam2_trt.runtime import SAM2ImagePredictor, SAM2VideoPredictor, SAM2VideoStream
    predictor = SAM2ImagePredictor.load("models/sam2.1_hiera_t")

Importing this package is cheap: the predictors and backends load their dependencies (onnxruntime,
TensorRT, CUDA) when first used.
"""

_EXPORTS = {
    "SAM2ImagePredictor": "image_predictor",
    "SAM2AutomaticMaskGenerator": "automatic_mask_generator",
    "SAM2VideoPredictor": "video.predictor",
    "SAM2VideoStream": "video.stream",
    "SAM2Model": "model",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")
