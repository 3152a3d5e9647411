"""The runtime's CUDA kernels (sources in the repository's cuda/), compiled at run time with NVRTC.

    from sam2_trt.runtime.gpu import kernels, DeviceArray, Stream
    stream = Stream.create()
    x = kernels.preprocess_video_frame(frame_u8, 1024, stream=stream)  # [1, 3, 1024, 1024] float32 on the GPU

Every kernel has a numpy twin in runtime.ops with the same signature (host arrays in and out): the CPU path,
and the oracle the kernels are tested against. Importing this package needs neither cuda-python nor a GPU;
the first launch does (pip install 'sam2-trt[gpu]').
"""

from .device import CudaError, CudaUnavailable, DeviceArray, Stream, unavailable_reason, use_device

__all__ = ["CudaError", "CudaUnavailable", "DeviceArray", "Stream", "unavailable_reason", "use_device"]
