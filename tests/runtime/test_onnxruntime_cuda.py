"""ONNX Runtime on CUDA: it never runs on the CPU unnoticed, and on a GPU it matches the official predictors.

The fallback is tested for real on a CPU-only ONNX Runtime (CI): asked for the CUDA provider, it falls back to
the CPU with a warning, which is exactly what a missing cuDNN or a too-old driver does with onnxruntime-gpu.
The parity tests (marked gpu) need onnxruntime-gpu and a GPU; `sam2-trt bench gpu-check` runs them with
SAM2_TRT_REQUIRE_GPU=1, so there they fail with the reason instead of skipping.
"""

import numpy as np
import pytest

from sam2_trt.core.errors import BackendUnavailable
from sam2_trt.core.specs import GRAPHS
from sam2_trt.runtime.backends import unavailable_reasons
from sam2_trt.runtime.backends.onnxruntime_cuda import PROVIDER, OnnxRuntimeCudaBackend, OrtCudaSession

CUDA_REASON = unavailable_reasons("cuda")["onnxruntime-cuda"]


def cuda_provider_loads() -> bool:
    import onnxruntime as ort

    return PROVIDER in ort.get_available_providers() and CUDA_REASON is None


@pytest.mark.skipif(cuda_provider_loads(), reason="this ONNX Runtime has a CUDA provider, so it does not fall back")
def test_a_session_that_fell_back_to_the_cpu_is_refused_with_the_reason(tiny512_dir):
    spec = GRAPHS["memory_encoder"]
    with pytest.raises(BackendUnavailable) as e:
        OrtCudaSession(spec, tiny512_dir / spec.filename, {"device_id": "0"}, 0)
    message = str(e.value)
    assert "memory_encoder.onnx on CPUExecutionProvider instead of CUDAExecutionProvider" in message, message
    assert "not in available provider names" in message  # ONNX Runtime's own words for why
    assert "backend='onnxruntime-cpu'" in message and "\x1b[" not in message


@pytest.fixture(scope="session")  # session: set up (and skipped) before the session-scoped exports it would need
def cuda_backend():
    if CUDA_REASON is not None:
        pytest.skip(f"ONNX Runtime CUDA cannot run here: {CUDA_REASON}")
    return OnnxRuntimeCudaBackend(device_id=0)


@pytest.mark.gpu
def test_sessions_run_on_cuda_and_keep_outputs_there(cuda_backend, tiny512_dir):
    from sam2_trt.core.graph_check import sample_inputs

    spec = GRAPHS["memory_encoder"]
    session = cuda_backend.open(spec, tiny512_dir / spec.filename)
    assert session.session.get_providers()[0] == PROVIDER
    out = session.run(sample_inputs(spec, 512, {"objects": 2}, seed=0))["memory"]
    assert out.device_name() == "cuda" and cuda_backend.to_host(out).shape == (2, 64, 32, 32)


@pytest.mark.gpu
def test_image_predictor_matches_official(cuda_backend, tiny1024_dir, official_tiny):
    from sam2_trt.runtime import SAM2ImagePredictor
    from tests.runtime.test_image_predictor_parity import assert_every_case_matches_official

    ours = SAM2ImagePredictor.load(tiny1024_dir, backend="onnxruntime-cuda", device="cuda")
    assert_every_case_matches_official(ours, official_tiny)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["one_click", "two_objects", "refinement_click_then_repropagation"])
def test_video_predictor_matches_official(cuda_backend, tiny512_dir, tiny_checkpoint, clip, name):
    from sam2_trt.runtime.model import SAM2Model
    from tests.runtime.test_video_parity import SCENARIOS, assert_same_results, play_both

    model = SAM2Model.load(tiny512_dir, backend="onnxruntime-cuda", device="cuda")
    got, expected = play_both(model, tiny_checkpoint, "configs/sam2.1/sam2.1_hiera_t.yaml", clip, SCENARIOS[name])
    assert_same_results(got, expected)
    assert np.isfinite(got[-1][3]).all()
