"""The ONNX Runtime CPU backend: the image encoder runs on a session with its batch fixed to 1 (what the runtime
sends), and a larger batch still runs, on the graph's dynamic session, with the same results per image."""

import numpy as np

from sam2_trt.core.specs import IMAGE_ENCODER


def test_image_encoder_batch_one_session_and_dynamic_batches(tiny512_dir):
    from sam2_trt.runtime.model import SAM2Model

    model = SAM2Model.load(tiny512_dir, backend="onnxruntime-cpu", device="cpu")
    session = model.session("image_encoder")
    images = np.random.default_rng(0).normal(size=(2, 3, 512, 512)).astype(np.float32)
    one_by_one = [model.run("image_encoder", image=images[i:i + 1]) for i in range(2)]
    assert session._general is None  # batch 1 never needed the dynamic session
    both = model.run("image_encoder", image=images)
    assert session._general is not None
    for t in IMAGE_ENCODER.outputs:
        for i in range(2):
            ref = both[t.name][i]
            err = float(np.abs(one_by_one[i][t.name][0] - ref).max())
            assert t.tolerance.passes(err, float(np.abs(ref).max())), (t.name, i, err)
