"""Meta's official predictors, set up the way their README runs them, for measuring side by side.

On a GPU the official code runs under bf16 autocast (its README), either eager or with `vos_optimized=True`
(torch.compile of the image encoder and memory modules, full-graph). On a CPU it runs in fp32; the stand-ins that
a CPU-only torch needs (ENVIRONMENT.md: no torchvision, no sam2._C connected components, a bf16 memory cast
the official code leaves to CUDA autocast) come from the test suite's official references, so benchmarks and
tests run the official code identically. They are only used where the real piece is missing.
"""

from __future__ import annotations

import contextlib
import importlib

MODES = {"cpu": ("fp32",), "cuda": ("eager-bf16", "vos-bf16")}


def _has_connected_components() -> bool:
    try:
        importlib.import_module("sam2._C")
        return True
    except ImportError:
        return False


def _stand_in(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise SystemExit(f"measuring the official predictor on this machine needs the stand-ins in {module} "
                         f"(run `sam2-trt bench` in the root of a sam2-trt source checkout: the measuring child "
                         f"imports them from its current directory): {e}") from e


@contextlib.contextmanager
def running(device: str):
    """inference_mode, bf16 autocast on CUDA, and the connected-components stand-in where sam2._C is missing
    (without it the official code skips hole filling with a warning, doing less work than it should)."""
    import torch

    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.inference_mode())
        if device.startswith("cuda"):
            stack.enter_context(torch.autocast("cuda", dtype=torch.bfloat16))
        if not _has_connected_components():
            stack.enter_context(_stand_in("tests.official_reference").official_connected_components())
        yield


def video_predictor(config: str, checkpoint, image_size: int, device: str, mode: str):
    """build_sam2_video_predictor with the image-size overrides of our export; mode from MODES[device kind]."""
    from sam2_trt.export.checkpoint import image_size_overrides

    if device == "cpu":
        # fp32 on CPU with the memory cast the official code leaves to CUDA autocast (an exact cast)
        return _stand_in("tests.runtime.video_reference").build_official_video_predictor(
            config, checkpoint, image_size)
    from sam2.build_sam import build_sam2_video_predictor

    import torch

    torch.backends.cuda.matmul.allow_tf32 = True  # as the official notebooks and bench_official.py
    torch.backends.cudnn.allow_tf32 = True
    return build_sam2_video_predictor(config, str(checkpoint), device=device, vos_optimized=(mode == "vos-bf16"),
                                      hydra_overrides_extra=image_size_overrides(image_size))


def image_classes():
    """(SAM2ImagePredictor, SAM2AutomaticMaskGenerator), with the torchvision stand-in where torchvision is
    missing (a CPU-only torch)."""
    try:
        importlib.import_module("torchvision")
    except (ImportError, RuntimeError):  # RuntimeError: a torchvision built for another torch
        return _stand_in("tests.official_reference").official_image_classes()
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    return SAM2ImagePredictor, SAM2AutomaticMaskGenerator


def image_model(config: str, checkpoint, image_size: int, device: str):
    from sam2.build_sam import build_sam2

    from sam2_trt.export.checkpoint import image_size_overrides

    return build_sam2(config, str(checkpoint), device=device, hydra_overrides_extra=image_size_overrides(image_size))


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def peak_gpu_mb(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**20  # of that GPU, not the current one
