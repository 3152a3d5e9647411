"""sam2-trt: SAM 2 / SAM 2.1 out of PyTorch, as validated ONNX graphs, TensorRT engines and a drop-in runtime.

    from sam2_trt import SAM2ImagePredictor, SAM2VideoPredictor
    predictor = SAM2ImagePredictor.load("models/sam2.1_hiera_t")

The one import name of the distribution. Its parts, from the ground floor up (no import runs back up):

    sam2_trt.core        the contract every stage shares: graph specs, model metadata, engine records, errors,
                         graph comparison (numpy only)
    sam2_trt.export      PyTorch -> four validated ONNX graphs (needs torch and the official sam2)
    sam2_trt.engines     ONNX -> TensorRT engines (needs tensorrt and polygraphy)
    sam2_trt.runtime     graphs or engines -> masks, without PyTorch
    sam2_trt.jobs        many videos into one folder, here or on a Ray cluster (sam2-trt track-many)
    sam2_trt.benchmarks  side-by-side measurements against the official predictors
    sam2_trt.cli         the `sam2-trt` command, on top of them all

Importing this package is cheap: the names below load the runtime when first used, and nothing here ever
imports torch.
"""

_EXPORTS = {
    "SAM2ImagePredictor": "sam2_trt.runtime.image_predictor",
    "SAM2AutomaticMaskGenerator": "sam2_trt.runtime.automatic_mask_generator",
    "SAM2VideoPredictor": "sam2_trt.runtime.video.predictor",
    "SAM2VideoStream": "sam2_trt.runtime.video.stream",
    "TrackingSession": "sam2_trt.runtime.video.session",
    "SAM2Model": "sam2_trt.runtime.model",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sam2_trt' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
