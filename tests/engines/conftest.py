import shutil

import pytest


def tensorrt_unavailable_reason():
    """None where TensorRT engines can be built and run here (tensorrt, polygraphy, a CUDA GPU), else why not."""
    from sam2_trt.runtime.backends.tensorrt import TensorRTBackend

    reason = TensorRTBackend.unavailable_reason()
    if reason is None:
        try:
            import polygraphy  # noqa: F401
        except ImportError as e:
            reason = f"polygraphy is not installed ({e})"
    return reason


@pytest.fixture(scope="session")
def tensorrt_here():
    reason = tensorrt_unavailable_reason()
    if reason:
        pytest.skip(f"TensorRT cannot run here: {reason}")


@pytest.fixture(scope="session")
def engines512(tensorrt_here, tiny512_dir, tmp_path_factory):
    """A copy of the 512 px export with fp32 and fp16 engines built by `sam2-trt build` (the copy keeps the
    shared export's directory free of engines)."""
    from tests.conftest import run_cli

    model = tmp_path_factory.mktemp("trt") / "tiny512"
    shutil.copytree(tiny512_dir, model)
    for precision in ("fp32", "fp16"):
        proc = run_cli("build", model, "--precision", precision, "--max-objects", "4", timeout=3600)
        assert proc.returncode == 0, proc.stderr[-4000:] + proc.stdout[-4000:]
    return model
