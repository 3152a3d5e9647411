"""`sam2-trt build --device cuda:N` builds on GPU N and records GPU N, and leaves the caller on its own device
(issue 19, item 6). TensorRT and the GPUs are emulated (tests/runtime/*_emulator.py); the TensorRT-specific
build of one engine (builder.build_engine, which needs the real TensorRT) is replaced by one that records where
it ran and writes a record as the real one does."""

import dataclasses
import sys

import pytest

from sam2_trt.core.engine_record import read_record
from sam2_trt.engines import builder
from sam2_trt.runtime.backends.tensorrt import trt_logger
from sam2_trt.runtime.gpu.device import current_device
from tests.runtime.cuda_emulator import CudaEmulator, install
from tests.runtime.tensorrt_emulator import TensorRTEmulator
from tests.runtime.test_tensorrt_emulated import record_for


def test_engines_are_built_on_and_recorded_for_the_requested_gpu(monkeypatch, tmp_path, tiny512_dir):
    pytest.importorskip("polygraphy")
    cuda = install(monkeypatch, CudaEmulator(devices=2))
    monkeypatch.setitem(sys.modules, "tensorrt", TensorRTEmulator(cuda))
    monkeypatch.delattr(trt_logger, "instance", raising=False)
    model = tmp_path / "model"
    model.mkdir()
    for f in tiny512_dir.iterdir():
        (model / f.name).symlink_to(f)
    built_on = []

    def build_engine(trt, meta, graph, target, options, log):
        built_on.append((graph, current_device(), target.gpu_name))
        path = target.engine_dir(meta.model_dir) / f"{graph}.engine"
        path.write_bytes(b"engine")
        record = dataclasses.replace(record_for(meta.model_dir, graph, target, path), builder={"seconds": 0.0})
        builder.write_record(path.parent, record)
        return record

    monkeypatch.setattr(builder, "build_engine", build_engine)
    engine_dir = builder.build_engines(model, builder.BuildOptions(precision="fp16"), graphs=["memory_encoder"],
                                       device_id=1, log=lambda m: None)
    assert built_on == [("memory_encoder", 1, "Emulated GPU 1")] and current_device() == 0
    assert engine_dir.name == "trt10.99.0-emulated-gpu-1-sm90-fp16"
    assert read_record(engine_dir, "memory_encoder").target.gpu_name == "Emulated GPU 1"
