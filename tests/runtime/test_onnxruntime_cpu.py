"""The ONNX Runtime CPU backend: the image encoder runs on a session with its batch fixed to 1 (what the runtime
sends), and a larger batch runs image by image on it, so each image gets exactly the bits it gets alone."""

import numpy as np

from sam2_trt.core.specs import IMAGE_ENCODER


def test_image_encoder_batches_equal_each_image_alone(tiny512_dir):
    from sam2_trt.runtime.model import SAM2Model

    model = SAM2Model.load(tiny512_dir, backend="onnxruntime-cpu", device="cpu")
    inputs = {i.name: tuple(i.shape) for i in model.session("image_encoder").session.get_inputs()}
    assert inputs == {"image": (1, 3, 512, 512)}  # the batch axis is fixed for the optimizer
    images = np.random.default_rng(0).normal(size=(3, 3, 512, 512)).astype(np.float32)
    one_by_one = [model.run("image_encoder", image=images[i:i + 1]) for i in range(3)]
    together = model.run("image_encoder", image=images)
    for t in IMAGE_ENCODER.outputs:
        assert together[t.name].shape[0] == 3
        for i in range(3):
            assert np.array_equal(one_by_one[i][t.name][0], together[t.name][i]), (t.name, i)
