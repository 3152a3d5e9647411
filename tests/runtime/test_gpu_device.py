"""runtime/gpu's device plumbing on a CPU, over the CUDA emulator (cuda_emulator.py): explicit devices that
never leak into the caller's thread, streams that know their device and finish their work before they go, the
`__cuda_array_interface__` stream field both ways, kernels loaded on the device they run on, and the versions in
every "GPU unavailable" reason (issue 19, items 5, 6 and 8)."""

import numpy as np
import pytest

from sam2_trt.runtime.gpu import device, kernels, launch
from sam2_trt.runtime.gpu.device import (CudaUnavailable, DeviceArray, Stream, current_device, interface_stream,
                                         producer_stream_to_wait_for, use_device)
from sam2_trt.runtime.gpu.versions import CudaVersions, no_device_reason, version_text
from tests.runtime.cuda_emulator import CudaEmulator, install


@pytest.fixture
def cuda(monkeypatch):
    return install(monkeypatch, CudaEmulator(devices=2))


# ---- devices ------------------------------------------------------------------------------------------------
def test_use_device_switches_for_the_block_only(cuda):
    assert current_device() == 0
    with use_device(1):
        assert current_device() == 1
        with use_device(0):
            assert current_device() == 0
        assert current_device() == 1
    assert current_device() == 0
    with pytest.raises(RuntimeError, match="inside"), use_device(1):
        raise RuntimeError("inside")
    assert current_device() == 0  # restored on the way out of an exception too
    with pytest.raises(CudaUnavailable, match=r"CUDA device 5 does not exist \(2 device\(s\) found\)"):
        with use_device(5):
            pass
    assert [e for e in cuda.log if e[0] == "context"] == [("context", 1), ("context", 0)]  # once per device


def test_streams_know_their_device_and_finish_before_they_go(cuda, monkeypatch):
    s = Stream.create(1)
    assert s.device_id == 1 and current_device() == 0 and ("stream", 1, s.handle) in cuda.log
    handle = s.handle
    del s
    assert cuda.log[-2:] == [("synchronize", handle), ("destroy stream", handle)]
    kept = Stream.create(0)
    arr = DeviceArray.empty((4,), np.float32, kept)
    monkeypatch.setattr(device.sys, "is_finalizing", lambda: True)  # interpreter shutdown: free nothing
    before = len(cuda.log)
    del arr, kept
    assert len(cuda.log) == before and len(cuda.memory) == 1


def test_kernels_load_on_the_device_they_run_on(cuda, monkeypatch, tmp_path):
    """Module loading happens with that device current, and the caller's thread stays on its own device."""
    monkeypatch.setenv("SAM2_TRT_CACHE", str(tmp_path))
    monkeypatch.setattr(launch, "_REGISTRY", launch._Registry())
    k = launch.kernel("mask_frame", "mask_stats_init", device_id=1)  # compiled by the real NVRTC
    assert [e for e in cuda.log if e[0] == "module"] == [("module", 1)] and current_device() == 0
    assert k.function == (("module", 1), "mask_stats_init")
    assert launch.kernel("mask_frame", "mask_stats_init", device_id=1) is k  # compiled and loaded once


def test_frame_masks_refuses_an_empty_input_like_its_twin(cuda):
    """An empty low-res input would leave the masks unwritten: refused before any launch, as the twin does."""
    empty = DeviceArray.from_host(np.zeros((2, 1, 0, 0), np.float32))
    with pytest.raises(ValueError, match=r"frame_masks: cannot resize \(0, 0\) to \(8, 8\): sizes must be >= 1"):
        kernels.frame_masks(empty, (8, 8))


# ---- __cuda_array_interface__ streams -----------------------------------------------------------------------
def test_interface_stream_values():
    assert interface_stream(0) == 1 and interface_stream(0x5000) == 0x5000  # 0 is forbidden: legacy is 1
    assert producer_stream_to_wait_for({}, 0x10) is None  # no stream named: nothing to wait for
    assert producer_stream_to_wait_for({"stream": None}, 0x10) is None
    assert producer_stream_to_wait_for({"stream": 0x10}, 0x10) is None  # the consumer's own stream
    assert producer_stream_to_wait_for({"stream": 1}, 0) is None  # both the legacy default stream
    assert producer_stream_to_wait_for({"stream": 0x20}, 0x10) == 0x20
    assert producer_stream_to_wait_for({"stream": 2}, None) == 2
    with pytest.raises(ValueError, match="stream 0, which the protocol forbids"):
        producer_stream_to_wait_for({"stream": 0}, 0x10)


def test_device_arrays_export_their_stream_and_wait_for_a_producers(cuda):
    producer, consumer = Stream.create(0), Stream.create(0)
    made = DeviceArray.zeros((3,), np.float32, producer)
    cai = made.__cuda_array_interface__
    assert cai["version"] == 3 and cai["stream"] == producer.handle
    assert DeviceArray.zeros((1,), np.float32).__cuda_array_interface__["stream"] == 1  # the legacy stream

    class Foreign:  # e.g. a CuPy array still being written on `producer`
        __cuda_array_interface__ = cai

    view = DeviceArray.from_cuda_array_interface(Foreign(), consumer)
    assert view.ptr == made.ptr
    record, wait = cuda.log[-2:]
    assert record[0] == "record" and record[2] == producer.handle  # an event on the producer's stream ...
    assert wait == ("wait", consumer.handle, record[1])  # ... that the consumer's stream waits for
    n = len(cuda.log)
    DeviceArray.from_cuda_array_interface(Foreign(), producer)  # on the producer's own stream: no wait
    assert len(cuda.log) == n


# ---- versions in every reason -------------------------------------------------------------------------------
def test_version_text():
    assert version_text(12040) == "12.4" and version_text(13000) == "13.0" and version_text(0) == "none"


@pytest.mark.parametrize("driver,runtime,expect", [
    (12040, 13050, r"driver supports CUDA 12\.4, older than the CUDA 13 runtime of cuda-bindings 13\.5\.0, which "
                   r"needs a R580 or newer driver.*sam2-trt\[gpu-cu12\]"),
    (0, 13050, r"no NVIDIA driver is loaded here"),
    (13000, 13050, r"is an NVIDIA GPU with a working driver here\?"),  # minor versions are compatible
])
def test_no_device_reasons_name_the_versions_and_the_fix(driver, runtime, expect):
    reason = no_device_reason("cudaErrorInsufficientDriver", CudaVersions(driver, runtime, "13.5.0"))
    assert reason.startswith("no usable CUDA driver/device (cudaErrorInsufficientDriver; driver supports CUDA "
                             f"{version_text(driver)}, cuda-bindings 13.5.0 (CUDA runtime {version_text(runtime)})")
    assert __import__("re").search(expect, reason), reason


def test_this_machines_reason_names_its_versions():
    """No GPU here (CI): the reason says so, with the driver and cuda-bindings versions, not just "no GPU"."""
    import cuda.bindings

    reason = device.unavailable_reason()
    if reason is None:
        pytest.skip("a CUDA device is usable here")
    assert f"cuda-bindings {cuda.bindings.__version__}" in reason and "driver supports CUDA" in reason, reason
