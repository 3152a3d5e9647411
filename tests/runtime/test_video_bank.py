"""The memory bank and the per-frame output store: slots stay in place, only new frames are copied in, the
graph inputs are views of the bank, and stored memories round-trip exactly (they are bf16 values)."""

import numpy as np

from sam2_trt.runtime.video.bank import MemoryBank
from sam2_trt.runtime.video.memory_selection import MemoryRule, select_memories
from sam2_trt.runtime.video.outputs import FrameHistory, FrameOutput, bf16_bits, bf16_to_float32

MEM, FEAT, HIDDEN = 4, 2, 8


def bf16_exact(rng, shape):
    return bf16_to_float32(bf16_bits(rng.standard_normal(shape).astype(np.float32)))


def test_sliding_window_copies_only_the_new_frame_and_inputs_are_views():
    rng = np.random.default_rng(0)
    memories = {t: bf16_exact(rng, (MEM, FEAT, FEAT)) for t in range(20)}
    loads = []

    def source(t):
        def load(dst):
            loads.append(t)
            np.copyto(dst, memories[t])
        return t + 1, load  # serial = frame + 1

    bank = MemoryBank(MEM, FEAT, HIDDEN)
    bank.reserve(1, 7, 3)
    rule = MemoryRule()
    for f in range(1, 12):
        mems, _ = select_memories(rule, f, False, [0], lambda t: 1 <= t < f, None)
        bank.fill_row(0, [(*source(r.frame)[:1], int(r.tpos), source(r.frame)[1]) for r in mems], [])
        inputs = bank.inputs([0])
        assert np.shares_memory(inputs["memory"], bank.memory)  # no copy for the graph
        valid = inputs["memory_valid"][0] > 0
        held = sorted(int(s) - 1 for s in bank.memory_serial[0][valid])
        assert held == sorted({0} | set(range(max(1, f - 6), f)))
        for slot in np.flatnonzero(valid):  # each slot holds its frame's memory and temporal index
            t = int(bank.memory_serial[0, slot]) - 1
            np.testing.assert_array_equal(bank.memory[0, slot], memories[t])
            assert bank.memory_tpos_index[0, slot] == (6 if t == 0 else f - t - 1)
    assert sorted(loads) == list(range(11))  # every frame was copied in exactly once
    assert bank.capacity == (1, 7, 3)


def test_pointers_padding_and_drop_row():
    bank = MemoryBank(MEM, FEAT, HIDDEN)
    bank.reserve(3, 2, 4)
    for row in range(3):
        vec = np.full(HIDDEN, row, np.float32)
        bank.fill_row(row, [], [(vec, 0.5)] * (row + 1))
    np.testing.assert_array_equal(bank.pointer_valid[:3], [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]])
    subset = bank.inputs([0, 2])
    assert subset["object_pointers"].shape == (2, 4, HIDDEN) and subset["object_pointers"][1, 0, 0] == 2
    bank.drop_row(1)
    assert bank.object_pointers[1, 0, 0] == 2 and bank.pointer_valid[1].tolist() == [1, 1, 1, 0]
    assert not bank.pointer_valid[2].any()


def test_frame_history_round_trips_and_ring_forgets_old_frames():
    rng = np.random.default_rng(1)
    history = FrameHistory(None, 8, FEAT, MEM, HIDDEN, ring=4)
    outs = {}
    for t in range(10):
        outs[t] = FrameOutput(rng.standard_normal((8, 8)).astype(np.float32), rng.standard_normal(HIDDEN)
                              .astype(np.float32), float(t), bf16_exact(rng, (MEM, FEAT, FEAT)), 100 + t)
        history.put(t, outs[t])
    assert history.frames() == [6, 7, 8, 9] and 5 not in history and 9 in history
    dst = np.empty((MEM, FEAT, FEAT), np.float32)
    history.copy_memory(8, dst)
    np.testing.assert_array_equal(dst, outs[8].memory)  # bf16 bits: lossless
    np.testing.assert_allclose(history.masks(8), outs[8].masks, rtol=1e-3)  # float16 masks
    np.testing.assert_array_equal(history.pointer(8), outs[8].pointer)
    assert history.serial(8) == 108 and history.serial(3) == 0 and history.masks(3) is None
    assert history.pop(7) is True and 7 not in history and history.pop(7) is False

def test_memory_selection_follows_the_official_rules():
    rule = MemoryRule()
    # frame 10, forward, cond frames 0 and 12 (12 is in the future: its memory counts, its pointer does not)
    mems, ptrs = select_memories(rule, 10, False, [0, 12], lambda t: t not in (0, 12), 100)
    assert [(m.frame, m.cond, m.tpos) for m in mems] == [(0, True, 6), (12, True, 6)] + \
        [(t, False, 10 - t - 1) for t in (4, 5, 6, 7, 8, 9)]
    assert [(p.frame, p.cond) for p in ptrs] == [(0, True)] + [(t, False) for t in range(9, -1, -1) if t != 0]
    assert ptrs[0].tpos == 10 / 15 and ptrs[1].tpos == 1 / 15
    # reverse: frames after count as the past; short videos normalise pointer distances by length - 1
    mems, ptrs = select_memories(rule, 2, True, [4], lambda t: 0 <= t < 6 and t != 4, 6)
    assert [(m.frame, m.tpos) for m in mems] == [(4, 6), (5, 2), (3, 0)]
    assert [(p.frame, p.tpos) for p in ptrs] == [(4, 2 / 5), (3, 1 / 5), (5, 3 / 5)]  # (f - t) * -1


def test_mirrored_bank_uploads_only_changed_slots_and_tracks_like_the_host_bank(tiny512_dir, clip):
    """The device bank's protocol, on the host mirror: the real predictor with a mirrored bank gives the same
    masks as with the host bank, and in steady state each frame uploads one memory per object."""
    from sam2_trt.runtime.model import SAM2Model
    from sam2_trt.runtime.video.device_bank import HostMirror, MirroredMemoryBank
    from sam2_trt.runtime.video.predictor import SAM2VideoPredictor

    def mirrored_bank():  # what the tracker makes on a CUDA backend, with a host mirror in place of the device
        meta = model.meta
        return MirroredMemoryBank(meta.flags["mem_dim"], meta.feature_size, meta.flags["hidden_dim"], HostMirror())

    model = SAM2Model.load(tiny512_dir, backend="onnxruntime-cpu", device="cpu")
    results, uploads = {}, []
    for mirrored in (False, True):
        predictor = SAM2VideoPredictor(model)
        if mirrored:
            predictor.tracker.new_bank = mirrored_bank
        state = predictor.init_state(str(clip))
        predictor.add_new_points_or_box(state, 0, 1, points=np.array([[95.0, 70.0]]), labels=np.array([1]))
        predictor.add_new_points_or_box(state, 0, 2, box=np.array([195.0, 95.0, 265.0, 205.0]))
        masks = []
        for _, _, m in predictor.propagate_in_video(state):
            masks.append(m)
            if mirrored:
                uploads.append(state.bank.mirror.uploads)
        results[mirrored] = masks
        state.close()
    for a, b in zip(results[False], results[True]):
        np.testing.assert_array_equal(a, b)
    per_frame = np.diff(uploads)
    assert len(per_frame) >= 3 and (per_frame[1:] == 2).all(), uploads  # two objects: one new memory each


def test_inputs_are_trimmed_to_the_slots_and_pointers_in_use():
    """Before the window fills, most of the reserved capacity is padding; the predictor passes only up to the
    last valid slot and pointer (exact, and less work), at least one slot, and possibly no pointer."""
    rng = np.random.default_rng(1)
    bank = MemoryBank(MEM, FEAT, HIDDEN)
    bank.reserve(2, 7, 16)

    def mem(serial):
        return serial, 6, lambda dst: np.copyto(dst, bf16_exact(rng, (MEM, FEAT, FEAT)))

    assert bank.used_extent([0, 1]) == (1, 0)  # nothing valid yet: one (masked) slot, no pointer
    bank.fill_row(0, [mem(1), mem(2)], [(np.ones(HIDDEN, np.float32), 0.1)])
    bank.fill_row(1, [mem(3), mem(4), mem(5)], [])
    assert bank.used_extent([0]) == (2, 1) and bank.used_extent([1]) == (3, 0)
    assert bank.used_extent([0, 1]) == (3, 1)  # the widest row sets the extent of a batched call
    trimmed = bank.inputs([0, 1], *bank.used_extent([0, 1]))
    assert trimmed["memory"].shape == (2, 3, MEM, FEAT, FEAT) and trimmed["object_pointers"].shape == (2, 1, HIDDEN)
    assert trimmed["memory_valid"].tolist() == [[1, 1, 0], [1, 1, 1]]
    # a slot freed in the middle stays in the extent (slots keep their place), one freed at the end does not
    bank.fill_row(1, [mem(3), mem(5)], [])
    assert bank.used_extent([1]) == (3, 0)
    bank.fill_row(1, [mem(3)], [])
    assert bank.used_extent([1]) == (1, 0)
