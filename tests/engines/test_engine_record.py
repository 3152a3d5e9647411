"""Engine bookkeeping without TensorRT: folder names, records, refusing mismatches, profile checks, precision
choice. The engine files here are placeholders: what is under test is what the runtime decides from the
records and files, which needs no TensorRT."""

import json

import pytest

from sam2_trt.engines.precision import policy_for
from sam2_trt.engines.profiles import ProfileLimits, derive_profile
from sam2_trt.core.engine_record import (EngineError, EngineMismatch, EngineRecord, EngineTarget, ShapeOutsideProfile,
                                   check_record, choose_precision, read_record, record_path, write_record)
from sam2_trt.core.specs import GRAPHS

H100 = EngineTarget("10.13.3.9", "NVIDIA H100 80GB HBM3", (9, 0), "fp16")
ONNX_SHA = "a" * 64


def make_record(tmp_path, graph="memory_attention", target=H100, payload=b"engine bytes", **limits):
    engine_dir = target.engine_dir(tmp_path)
    engine_dir.mkdir(parents=True, exist_ok=True)
    (engine_dir / f"{graph}.engine").write_bytes(payload)
    record = EngineRecord(graph, target, ONNX_SHA, f"{graph}.engine", len(payload), "b" * 64,
                          derive_profile(GRAPHS[graph], 1024, ProfileLimits(**limits)),
                          policy_for(target.precision).to_json())
    write_record(engine_dir, record)
    return engine_dir, record


def test_folder_name_says_tensorrt_gpu_and_precision(tmp_path):
    assert H100.folder_name == "trt10.13.3.9-nvidia-h100-80gb-hbm3-sm90-fp16"
    assert H100.engine_dir(tmp_path) == tmp_path / "engines" / H100.folder_name
    with pytest.raises(ValueError, match="precision 'int8' is not one of fp32, tf32, fp16, bf16"):
        EngineTarget("10.13", "x", (9, 0), "int8")


def test_record_round_trips_through_json(tmp_path):
    engine_dir, record = make_record(tmp_path)
    again = read_record(engine_dir, "memory_attention")
    assert again == record
    assert not list(engine_dir.glob(".*tmp")), "the atomic write left its temp file"
    raw = json.loads(record_path(engine_dir, "memory_attention").read_text())
    assert raw["target"]["compute_capability"] == [9, 0] and raw["onnx_sha256"] == ONNX_SHA
    assert raw["profiles"]["memory"]["max"] == [16, 16, 64, 64, 64]
    assert raw["precision_policy"]["keep_fp32_ops"][:2] == ["LayerNormalization", "Softmax"]
    assert raw["precision_policy"]["tolerances"]["memory_attention.conditioned_features"]["rtol"] > 0


def test_a_matching_record_is_accepted_and_a_missing_one_is_none(tmp_path):
    engine_dir, record = make_record(tmp_path)
    check_record(record, H100, ONNX_SHA, engine_dir)  # no error
    assert read_record(engine_dir, "image_encoder") is None


@pytest.mark.parametrize("target, sha, message", [
    (EngineTarget("10.14.1.48", H100.gpu_name, (9, 0), "fp16"), ONNX_SHA,
     "built with TensorRT 10.13.3.9, this is TensorRT 10.14.1.48"),
    (EngineTarget(H100.tensorrt_version, "NVIDIA L4", (8, 9), "fp16"), ONNX_SHA,
     r"built for NVIDIA H100 80GB HBM3 \(sm90\), this GPU is NVIDIA L4 \(sm89\)"),
    (EngineTarget(H100.tensorrt_version, H100.gpu_name, (9, 0), "fp32"), ONNX_SHA, "it is fp16, fp32 was asked for"),
    (H100, "c" * 64, "built from another memory_attention.onnx .* the model was re-exported"),
])
def test_a_mismatch_is_refused_saying_why_and_how_to_rebuild(tmp_path, target, sha, message):
    engine_dir, record = make_record(tmp_path)
    with pytest.raises(EngineMismatch, match=message) as e:
        check_record(record, target, sha, engine_dir)
    assert f"sam2-trt build {tmp_path} --precision {target.precision} --force" in str(e.value)
    assert f"delete {engine_dir}" in str(e.value)


def test_a_changed_or_missing_engine_file_is_refused(tmp_path):
    engine_dir, record = make_record(tmp_path)
    (engine_dir / "memory_attention.engine").write_bytes(b"truncated")
    with pytest.raises(EngineMismatch, match="has 9 bytes, the record says 12"):
        check_record(record, H100, ONNX_SHA, engine_dir)
    (engine_dir / "memory_attention.engine").unlink()
    with pytest.raises(EngineMismatch, match="engine file .* is missing"):
        check_record(record, H100, ONNX_SHA, engine_dir)


def test_a_corrupt_record_is_refused_not_crashed_on(tmp_path):
    engine_dir, _ = make_record(tmp_path)
    record_path(engine_dir, "memory_attention").write_text("{not json")
    with pytest.raises(EngineMismatch, match="is not a valid engine record"):
        read_record(engine_dir, "memory_attention")


def test_shapes_inside_the_profile_pass_and_outside_name_axis_range_and_option(tmp_path):
    _, record = make_record(tmp_path, max_slots=9)
    record.check_shape("memory", (2, 9, 64, 64, 64))
    record.check_shape("object_pointers", (2, 0, 256))  # no pointers yet: inside (pointers from 0)
    with pytest.raises(ShapeOutsideProfile) as e:
        record.check_shape("memory", (2, 12, 64, 64, 64), "sam2-trt build m --precision fp16 --force")
    msg = str(e.value)
    assert "input 'memory' shape (2, 12, 64, 64, 64): slots = 12 is outside 1..9" in msg
    assert "`sam2-trt build m --precision fp16 --force --max-slots 12`" in msg
    with pytest.raises(ShapeOutsideProfile, match="expected 5 dimensions"):
        record.check_shape("memory", (2, 9, 64, 64))
    with pytest.raises(ShapeOutsideProfile, match=r"F = 32 is outside 64..64|= 32 is outside 64..64"):
        record.check_shape("vision_features", (1, 256, 32, 32))


def test_precision_choice_explicit_single_default_and_ambiguous(tmp_path):
    base = EngineTarget(H100.tensorrt_version, H100.gpu_name, (9, 0), "fp32")
    assert choose_precision(tmp_path, base, None) == "fp16"  # nothing built: the default, built on first use
    assert choose_precision(tmp_path, base, "bf16") == "bf16"
    make_record(tmp_path, target=EngineTarget(H100.tensorrt_version, H100.gpu_name, (9, 0), "bf16"))
    assert choose_precision(tmp_path, base, None) == "bf16"  # the one built
    make_record(tmp_path, target=EngineTarget(H100.tensorrt_version, H100.gpu_name, (9, 0), "fp32"))
    with pytest.raises(EngineError, match=r"several precisions for this GPU \(fp32, bf16\); pass precision="):
        choose_precision(tmp_path, base, None)
    other_gpu = EngineTarget(H100.tensorrt_version, "NVIDIA L4", (8, 9), "fp32")
    assert choose_precision(tmp_path, other_gpu, None) == "fp16"  # engines for another GPU do not count
    with pytest.raises(ValueError, match="precision 'half' is not one of"):
        choose_precision(tmp_path, base, "half")


# ---- a missing engine: built by the installed builder, or an error naming the command --------------------------
def test_a_missing_engine_without_a_builder_names_the_command(tmp_path):
    from sam2_trt.runtime.backends import engine_builds

    previous = engine_builds.install_engine_builder(None)
    try:
        with pytest.raises(EngineError, match=r"no fp16 TensorRT engine for memory_attention in .*; run `sam2-trt "
                                              r"build .* --precision fp16` \(or call sam2_trt.engines.enable_build_on"):
            engine_builds.record_or_build(tmp_path, "memory_attention", "fp16", H100.engine_dir(tmp_path), 0)
    finally:
        engine_builds.install_engine_builder(previous)


def test_the_installed_builder_builds_a_missing_engine_once(tmp_path):
    from sam2_trt.runtime.backends import engine_builds

    calls = []

    def builder(model_dir, graph, precision, device_id):
        calls.append((model_dir, graph, precision, device_id))
        make_record(model_dir, graph)

    previous = engine_builds.install_engine_builder(builder)
    try:
        engine_dir = H100.engine_dir(tmp_path)
        record = engine_builds.record_or_build(tmp_path, "memory_attention", "fp16", engine_dir, 3)
        again = engine_builds.record_or_build(tmp_path, "memory_attention", "fp16", engine_dir, 3)
        assert record == again == read_record(engine_dir, "memory_attention")
        assert calls == [(tmp_path, "memory_attention", "fp16", 3)]  # built once, then found
        with pytest.raises(EngineError, match="no fp16 TensorRT engine for image_encoder"):  # the backend's opt-out
            engine_builds.record_or_build(tmp_path, "image_encoder", "fp16", engine_dir, 0, allow_build=False)
    finally:
        engine_builds.install_engine_builder(previous)


def test_a_failing_builder_is_an_engine_error_with_the_command(tmp_path):
    from sam2_trt.runtime.backends import engine_builds

    def broken(model_dir, graph, precision, device_id):
        raise RuntimeError("out of GPU memory")

    def silent(model_dir, graph, precision, device_id):
        pass

    previous = engine_builds.install_engine_builder(broken)
    try:
        with pytest.raises(EngineError, match=r"building the prompt_decoder engine failed \(RuntimeError: out of GPU "
                                              r"memory\); fix that and run `sam2-trt build"):
            engine_builds.record_or_build(tmp_path, "prompt_decoder", "bf16", H100.engine_dir(tmp_path), 0)
        engine_builds.install_engine_builder(silent)
        with pytest.raises(EngineError, match="returned without writing"):
            engine_builds.record_or_build(tmp_path, "prompt_decoder", "bf16", H100.engine_dir(tmp_path), 0)
        with pytest.raises(TypeError, match="an engine builder must be callable"):
            engine_builds.install_engine_builder("sam2-trt build")
    finally:
        engine_builds.install_engine_builder(previous)


def test_the_cli_and_the_engines_package_install_their_builders():
    from sam2_trt.cli.engines import build_in_child_process, install_build_on_first_use
    from sam2_trt.engines import enable_build_on_first_use
    from sam2_trt.engines.first_use import build_one_engine
    from sam2_trt.runtime.backends import engine_builds

    previous = engine_builds.installed_engine_builder()
    try:
        enable_build_on_first_use()
        assert engine_builds.installed_engine_builder() is build_one_engine
        install_build_on_first_use()
        assert engine_builds.installed_engine_builder() is build_in_child_process
    finally:
        engine_builds.install_engine_builder(previous)
