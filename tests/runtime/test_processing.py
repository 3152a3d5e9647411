"""The pre/post-processing seam: numpy twins on the CPU, CUDA kernels on a GPU backend that can run them."""

import logging

import numpy as np
import pytest

from sam2_trt.runtime.backends.onnxruntime_cpu import OnnxRuntimeCpuBackend
from sam2_trt.runtime.backends.onnxruntime_cuda import OnnxRuntimeCudaBackend
from sam2_trt.runtime.gpu import unavailable_reason
from sam2_trt.runtime.processing import CudaProcessing, HostProcessing, select_processing
from tests.official_reference import mask_iou, scene


def test_cpu_backend_uses_the_numpy_twins():
    assert isinstance(select_processing(OnnxRuntimeCpuBackend()), HostProcessing)


def test_cuda_backend_uses_kernels_only_where_they_can_run(caplog):
    with caplog.at_level(logging.INFO, logger="sam2_trt"):
        chosen = select_processing(OnnxRuntimeCudaBackend(device_id=0))
    if unavailable_reason(0) is None:
        assert isinstance(chosen, CudaProcessing)
    else:  # this machine: no driver, so the twins run and the log says why
        assert isinstance(chosen, HostProcessing)
        assert any("CUDA kernels cannot run" in r.getMessage() for r in caplog.records)


def test_an_opened_model_carries_its_processing(tiny512_dir, monkeypatch):
    """The model chooses once, for its backend; the predictors on it use that choice and never choose."""
    from sam2_trt import SAM2AutomaticMaskGenerator, SAM2ImagePredictor, SAM2VideoPredictor
    from sam2_trt.runtime import model as model_module
    from sam2_trt.runtime.model import SAM2Model

    calls = []
    monkeypatch.setattr(model_module, "select_processing", lambda backend: calls.append(backend) or HostProcessing())
    model = SAM2Model.load(tiny512_dir, device="cpu")
    assert len(calls) == 1 and isinstance(model.processing, HostProcessing)
    video, image = SAM2VideoPredictor(model), SAM2ImagePredictor(model)
    SAM2AutomaticMaskGenerator(model, points_per_side=2)
    image.set_image(scene(64, 80))
    image.predict(point_coords=np.array([[30.0, 20.0]]), point_labels=np.array([1]))
    assert len(calls) == 1 and video.tracker.processing is model.processing


def test_host_processing_is_the_twins():
    from sam2_trt.runtime import ops

    image = scene(90, 70)
    np.testing.assert_array_equal(HostProcessing().preprocess_image(image, 64), ops.preprocess_image(image, 64))


@pytest.mark.gpu
def test_gpu_predictor_matches_the_cpu_predictor(tiny512_dir):
    """ONNX Runtime CUDA + the CUDA kernels give the masks of ONNX Runtime CPU + the numpy twins."""
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers() or unavailable_reason(0) is not None:
        pytest.skip("needs onnxruntime-gpu and a CUDA device")
    from sam2_trt.runtime import SAM2ImagePredictor

    image = scene(360, 480)
    args = dict(point_coords=np.array([[300.0, 130.0]]), point_labels=np.array([1]))
    results = []
    for backend, device in (("onnxruntime-cpu", "cpu"), ("onnxruntime-cuda", "cuda")):
        p = SAM2ImagePredictor.load(tiny512_dir, backend=backend, device=device, max_hole_area=8,
                                    max_sprinkle_area=8)
        p.set_image(image)
        results.append(p.predict(**args))
    assert isinstance(p.model.processing, CudaProcessing)
    (m1, i1, _), (m2, i2, _) = results
    np.testing.assert_allclose(i1, i2, atol=1e-3)
    assert min(mask_iou(a, b) for a, b in zip(m1, m2)) >= 0.99
