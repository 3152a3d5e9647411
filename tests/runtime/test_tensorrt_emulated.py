"""The TensorRT backend's own logic on a CPU: engines emulated over ONNX Runtime (tensorrt_emulator.py) on an
emulated CUDA runtime (cuda_emulator.py) whose fresh memory is garbage, whose illegal addresses are sticky and
which knows two devices. The real engines on a real GPU: tests/engines/test_tensorrt.py.

Issue 19: the CUDA-graph warm-up reads the call's own inputs (memory attention gathers with them); a capture
that fails still runs; every TensorRT answer is checked (refused shapes, negative output dimensions, engine
dtypes); a backend on cuda:1 puts everything on device 1 and leaves the caller's thread on its own device.
"""

import sys

import numpy as np
import pytest

from sam2_trt.core.engine_record import (EngineError, EngineMismatch, EngineRecord, build_command, engine_path,
                                         write_record)
from sam2_trt.core.graph_check import sample_inputs
from sam2_trt.core.metadata import load_metadata, sha256_file
from sam2_trt.core.specs import GRAPHS
from sam2_trt.engines.precision import policy_for
from sam2_trt.engines.profiles import ProfileLimits, derive_profile
from sam2_trt.runtime.backends import cuda_graphs
from sam2_trt.runtime.backends.engine_builds import install_engine_builder
from sam2_trt.runtime.backends.tensorrt import TensorRTBackend, TensorRTSession, current_target, trt_logger
from sam2_trt.runtime.gpu.device import DeviceArray, Stream, current_device
from tests.runtime.cuda_emulator import POISON, CudaEmulator, install
from tests.runtime.tensorrt_emulator import TensorRTEmulator, engine_file

SIZE = 512
MAX_OBJECTS = 4
ATTENTION_CASE = {"objects": 2, "slots": 3, "pointers": 5}


@pytest.fixture
def cuda(monkeypatch):
    return install(monkeypatch, CudaEmulator(devices=2))


@pytest.fixture
def trt(monkeypatch, cuda):
    emulator = TensorRTEmulator(cuda)
    monkeypatch.setitem(sys.modules, "tensorrt", emulator)
    monkeypatch.delattr(trt_logger, "instance", raising=False)  # one logger per TensorRT module
    yield emulator
    monkeypatch.delattr(trt_logger, "instance", raising=False)


def reference(model_dir, graph: str, inputs: dict) -> dict:
    import onnxruntime as ort

    spec = GRAPHS[graph]
    session = ort.InferenceSession(str(model_dir / spec.filename), providers=["CPUExecutionProvider"])
    return dict(zip(spec.output_names, session.run(spec.output_names, inputs)))


def record_for(model_dir, graph: str, target, path) -> EngineRecord:
    return EngineRecord(graph, target, load_metadata(model_dir).raw["graphs"][graph]["sha256"], path.name,
                        path.stat().st_size, sha256_file(path),
                        derive_profile(GRAPHS[graph], SIZE, ProfileLimits(max_objects=MAX_OBJECTS)),
                        policy_for(target.precision).to_json())


def session(trt, cuda, model_dir, graph: str, device_id: int = 0, cuda_graphs: bool = True, **faults):
    """A TensorRTSession of an emulated engine of `graph`, on `device_id` (made with that device current)."""
    from sam2_trt.runtime.gpu.device import use_device

    path = model_dir.parent / f"{graph}.engine"
    path.write_bytes(engine_file(model_dir / f"{graph}.onnx", graph, SIZE, **faults))
    with use_device(device_id):
        engine = trt.Runtime(None).deserialize_cuda_engine(path.read_bytes())
        target = current_target("fp32", device_id)
        stream = Stream.create(device_id)
        rebuild = f"{build_command(model_dir, 'fp32')} --force"
        return TensorRTSession(GRAPHS[graph], engine, record_for(model_dir, graph, target, path), stream,
                               cuda_graphs, rebuild, device_id)


def host(outputs: dict) -> dict:
    return {k: v.to_host() for k, v in outputs.items()}


# ---- CUDA graphs -------------------------------------------------------------------------------------------------
def test_the_emulator_makes_uninitialised_gather_indices_an_illegal_address(trt, cuda, tiny512_dir):
    """What the warm-up before a capture did (issue 19, item 1): memory attention on fresh buffers reads garbage
    indices, and the error sticks to every later call."""
    s = session(trt, cuda, tiny512_dir, "memory_attention", cuda_graphs=False)
    inputs = sample_inputs(s.spec, SIZE, ATTENTION_CASE, seed=0)
    fresh = {n: DeviceArray.empty(v.shape, v.dtype, s.stream) for n, v in inputs.items()}
    assert (fresh["memory_tpos_index"].to_host() == np.frombuffer(bytes([POISON] * 4), np.int32)).all()
    s.run(fresh)
    assert cuda.sticky is not None
    with pytest.raises(Exception, match="cudaErrorIllegalAddress"):
        s.run(inputs)


@pytest.mark.parametrize("graph,case", [("memory_attention", ATTENTION_CASE),
                                        ("prompt_decoder", {"objects": 2, "embeds": 1, "points": 3})])
def test_cuda_graph_replays_equal_plain_runs(trt, cuda, tiny512_dir, graph, case):
    """The captured call copies the call's inputs into its static buffers before its warm-up: no garbage index
    is read, and every replay gives the plain run's outputs."""
    inputs = sample_inputs(GRAPHS[graph], SIZE, case, seed=2)
    want = reference(tiny512_dir, graph, inputs)
    s = session(trt, cuda, tiny512_dir, graph)
    runs = [host(s.run(inputs)) for _ in range(4)]
    assert cuda.sticky is None and len(s.graphs) == 1, "the second call should have captured, later ones replay"
    assert [e[0] for e in cuda.log].count("graph launch") == 3
    for got in runs:
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])
    other = sample_inputs(GRAPHS[graph], SIZE, case, seed=3)  # a replay with new values computes on them
    np.testing.assert_array_equal(host(s.run(other))[GRAPHS[graph].output_names[0]],
                                  reference(tiny512_dir, graph, other)[GRAPHS[graph].output_names[0]])


def test_a_call_that_cannot_be_captured_still_runs(trt, cuda, tiny512_dir, caplog):
    s = session(trt, cuda, tiny512_dir, "memory_attention", uncapturable=True)
    inputs = sample_inputs(s.spec, SIZE, ATTENTION_CASE, seed=1)
    want = reference(tiny512_dir, "memory_attention", inputs)["conditioned_features"]
    with caplog.at_level("INFO", logger="sam2_trt"):
        runs = [host(s.run(inputs))["conditioned_features"] for _ in range(4)]
    for got in runs:
        np.testing.assert_array_equal(got, want)
    assert len(s.graphs) == 0 and "running it without a CUDA graph" in caplog.text
    assert caplog.text.count("CUDA graph capture failed") == 1  # refused once, then plain without trying again
    assert all(stream["capture"] is None for stream in cuda.streams.values())  # no stream left capturing


def test_graph_cache_plans():
    cache = cuda_graphs.GraphCache(limit=2)
    a, b, c = ((1,),), ((2,),), ((3,),)
    assert [cache.plan(a), cache.plan(a)] == ["plain", "capture"]
    cache.add(a, "graph a")
    assert cache.plan(a) == "replay" and cache.get(a) == "graph a"
    assert [cache.plan(b), cache.plan(a)] == ["plain", "plain"]  # a shape change reconfigures: plain once
    assert cache.plan(a) == "replay"
    cache.refuse(b)
    assert [cache.plan(b), cache.plan(b), cache.plan(b)] == ["plain"] * 3
    for key in (b, c):
        cache.add(key, key)
    assert len(cache) == 2 and a not in cache._graphs  # least recently used first out


# ---- every TensorRT answer checked -----------------------------------------------------------------------------
def test_a_refused_input_shape_is_an_error_before_anything_runs(trt, cuda, tiny512_dir):
    inputs = sample_inputs(GRAPHS["memory_encoder"], SIZE, {"objects": 3}, seed=0)
    s = session(trt, cuda, tiny512_dir, "memory_encoder", refuse_shapes={"mask_logits": [[3, 1, 128, 128]]})
    with pytest.raises(EngineError, match=r"refused shape \(3, 1, 128, 128\) for memory_encoder input 'mask_logits'"):
        s.run(inputs)
    assert s.context.enqueues == 0


def test_negative_output_dimensions_are_refused_without_allocating(trt, cuda, tiny512_dir):
    s = session(trt, cuda, tiny512_dir, "memory_encoder", negative_output_dims=["memory"])
    inputs = {n: DeviceArray.from_host(v, s.stream) for n, v in
              sample_inputs(s.spec, SIZE, {"objects": 2}, seed=0).items()}
    allocations = sum(1 for e in cuda.log if e[0] == "malloc")
    with pytest.raises(EngineError, match=r"could not infer the shape of memory_encoder output 'memory'.*\(-1, 64, 32, "
                                          r"32\).*\(2, 64, 32, 32\)"):
        s.run(inputs)
    assert sum(1 for e in cuda.log if e[0] == "malloc") == allocations and s.context.enqueues == 0


# ---- opening engines, and device N ---------------------------------------------------------------------------------
@pytest.fixture
def model_dir(tmp_path, tiny512_dir):
    """The 512 px export, its files linked, so that engines/ is written here."""
    model = tmp_path / "model"
    model.mkdir()
    for f in tiny512_dir.iterdir():
        (model / f.name).symlink_to(f)
    return model


@pytest.fixture
def builder(cuda, trt):
    """An engine builder making emulated engines (faults by graph in .faults), recording each call."""
    calls, faults = [], {}

    def build(model_dir, graph, precision, device_id):
        calls.append({"graph": graph, "device_id": device_id, "current_device": current_device()})
        target = current_target(precision, device_id)
        engine_dir = target.engine_dir(model_dir)
        engine_dir.mkdir(parents=True, exist_ok=True)
        path = engine_path(engine_dir, graph)
        path.write_bytes(engine_file(model_dir / f"{graph}.onnx", graph, SIZE, **faults.get(graph, {})))
        write_record(engine_dir, record_for(model_dir, graph, target, path))

    build.calls, build.faults = calls, faults
    previous = install_engine_builder(build)
    yield build
    install_engine_builder(previous)


def test_an_engine_whose_tensors_are_not_the_specs_is_refused_when_opened(cuda, trt, builder, model_dir):
    builder.faults["memory_attention"] = {"dtypes": {"memory_tpos_index": "FLOAT", "conditioned_features": "HALF"}}
    backend = TensorRTBackend(precision="fp32")
    with pytest.raises(EngineMismatch, match=r"(?s)'memory_tpos_index' is a input of float32, the spec says a input "
                                             r"of int32.*'conditioned_features' is a output of float16.*--force"):
        backend.open(GRAPHS["memory_attention"], model_dir / "memory_attention.onnx")


def test_a_backend_on_cuda_1_runs_on_device_1_and_leaves_the_thread_on_device_0(cuda, trt, builder, model_dir):
    from sam2_trt.runtime.model import SAM2Model

    assert current_device() == 0
    model = SAM2Model.load(model_dir, backend="tensorrt", device="cuda:1", precision="fp32")
    assert current_device() == 0 and model.backend.stream.device_id == 1
    inputs = sample_inputs(GRAPHS["memory_attention"], SIZE, ATTENTION_CASE, seed=4)
    for _ in range(3):  # plain, captured, replayed
        got = model.host(model.run("memory_attention", **inputs)["conditioned_features"])
        assert current_device() == 0
    np.testing.assert_array_equal(got, reference(model_dir, "memory_attention", inputs)["conditioned_features"])
    assert builder.calls == [{"graph": "memory_attention", "device_id": 1, "current_device": 0}]
    record = next((model_dir / "engines").iterdir())
    assert record.name.startswith("trt10.99.0-emulated-gpu-1-sm90-fp32")
    placed = [e for e in cuda.log if e[0] in ("malloc", "stream", "engine", "context", "graph launch")]
    assert placed and {e[1] for e in placed} == {1}, placed
    assert cuda.sticky is None


def test_the_device_memory_bank_lives_on_the_backends_device(cuda):
    from sam2_trt.runtime.video.device_bank import CudaMirror

    mirror = CudaMirror(Stream.create(1), device_id=1)
    mirror.allocate((2, 3, 4, 2, 2))
    mirror.upload(1, 2, np.full((4, 2, 2), 7.0, np.float32))
    mirror.flush()
    assert current_device() == 0
    assert [e[1] for e in cuda.log if e[0] in ("malloc", "stream")] == [1, 1]
    got = mirror.view(2).to_host()
    assert (got[1, 2] == 7.0).all() and (got[0] == 0).all()  # zeroed, not garbage, where nothing was uploaded
