"""The seam between the runtime and its pre/post-processing: the numpy twins (runtime.ops) on the host, or the
CUDA kernels (runtime.gpu.kernels, same signatures) when the backend runs on a GPU and the kernels can run.

Both return host numpy where the predictors need host values (selected masks), and the CUDA path hands the
preprocessed image to the backend as a device array, so a frame crosses PCIe once as uint8.
"""

from __future__ import annotations

import logging

import numpy as np

from . import ops

log = logging.getLogger("sam2_trt")


class HostProcessing:
    name = "numpy"

    def preprocess_image(self, image: np.ndarray, size: int) -> np.ndarray:
        """[H,W,3] uint8 -> [1,3,size,size] float32 (host)."""
        return ops.preprocess_image(image, size)

    def postprocess_image_masks(self, low_res: np.ndarray, orig_hw, mask_threshold: float, max_hole_area: float,
                                max_sprinkle_area: float) -> np.ndarray:
        """[B,C,h,w] float32 logits -> [B,C,H,W] float32 logits (host)."""
        return ops.postprocess_image_masks(low_res, orig_hw, mask_threshold, max_hole_area, max_sprinkle_area)

    # -- video --------------------------------------------------------------------------------------------
    def preprocess_video_frame(self, frame: np.ndarray, size: int) -> np.ndarray:
        """[H,W,3] uint8 -> [1,3,size,size] float32 (host): PIL bicubic, as the official JPEG loader."""
        return ops.preprocess_video_frame(frame, size)

    def fill_holes_in_mask_scores(self, low_res: np.ndarray, max_area: float) -> np.ndarray:
        """[N,1,h,w] float32 -> [N,1,h,w] float32 (host)."""
        return ops.fill_holes_in_mask_scores(low_res, max_area)

    def video_mask_logits(self, low_res: np.ndarray, video_hw, non_overlap: bool) -> np.ndarray:
        """[O,1,h,w] float32 -> [O,1,H,W] float32 (host): bilinear to the video, then the non-overlap
        constraint when asked (SAM2VideoPredictor._get_orig_video_res_output)."""
        out = ops.resize_bilinear(low_res, video_hw)
        return ops.apply_non_overlapping_constraints(out) if non_overlap else out


class CudaProcessing:
    """The kernels on the backend's device and stream: each call runs with that device current (use_device), so
    a model on cuda:1 computes on GPU 1 whatever device the calling thread has."""

    name = "cuda"

    def __init__(self, stream=None, device_id: int = 0):
        from .gpu.device import as_stream

        self.device_id = device_id
        self.stream = as_stream(stream, device_id)

    def _on_device(self):
        from .gpu.device import use_device

        return use_device(self.device_id)

    def preprocess_image(self, image: np.ndarray, size: int):
        """[H,W,3] uint8 (host or device) -> DeviceArray [1,3,size,size] float32, ready when this returns."""
        from .gpu import kernels

        with self._on_device():
            out = kernels.preprocess_image(image, size, stream=self.stream)
            self.stream.synchronize()  # the backend may run on another stream
        return out

    def postprocess_image_masks(self, low_res: np.ndarray, orig_hw, mask_threshold: float, max_hole_area: float,
                                max_sprinkle_area: float) -> np.ndarray:
        from .gpu import DeviceArray, kernels

        with self._on_device():
            dev = DeviceArray.from_host(np.ascontiguousarray(low_res, dtype=np.float32), self.stream)
            return kernels.postprocess_image_masks(dev, orig_hw, mask_threshold, max_hole_area, max_sprinkle_area,
                                                   stream=self.stream).to_host()

    # -- video --------------------------------------------------------------------------------------------
    def preprocess_video_frame(self, frame: np.ndarray, size: int):
        """[H,W,3] uint8 (host or device) -> DeviceArray [1,3,size,size] float32, ready when this returns."""
        from .gpu import kernels

        with self._on_device():
            out = kernels.preprocess_video_frame(frame, size, stream=self.stream)
            self.stream.synchronize()
        return out

    def fill_holes_in_mask_scores(self, low_res: np.ndarray, max_area: float) -> np.ndarray:
        from .gpu import DeviceArray, kernels

        with self._on_device():
            dev = DeviceArray.from_host(np.ascontiguousarray(low_res, dtype=np.float32), self.stream)
            return kernels.fill_holes_in_mask_scores(dev, max_area, stream=self.stream).to_host()

    def video_mask_logits(self, low_res: np.ndarray, video_hw, non_overlap: bool) -> np.ndarray:
        from .gpu import DeviceArray, kernels

        with self._on_device():
            dev = DeviceArray.from_host(np.ascontiguousarray(low_res, dtype=np.float32), self.stream)
            _, _, _, logits = kernels.frame_masks(dev, video_hw, 0.0, non_overlap, return_logits=True,
                                                  stream=self.stream)
            return logits.to_host()


def kernels_unavailable_reason(device_id: int) -> str | None:
    """None when the CUDA kernels can run on `device_id`: a usable device, NVRTC, a supported GPU."""
    from .gpu import unavailable_reason

    reason = unavailable_reason(device_id)
    if reason is not None:
        return reason
    from .gpu.compiler import NvrtcUnavailable, capability_reason, nvrtc_module
    from .gpu.device import compute_capability

    try:
        nvrtc_module()
    except NvrtcUnavailable as e:
        return str(e)
    return capability_reason(compute_capability(device_id))


def select_processing(backend):
    """CudaProcessing for a backend on CUDA when the kernels can run there, else HostProcessing (logged)."""
    if backend.device != "cuda":
        return HostProcessing()
    device_id = getattr(backend, "device_id", 0)
    reason = kernels_unavailable_reason(device_id)
    if reason is not None:
        log.info("sam2-trt: pre/post-processing on the CPU: the CUDA kernels cannot run (%s)", reason)
        return HostProcessing()
    return CudaProcessing(getattr(backend, "stream", None), device_id)
