"""The runtime never imports torch: every image path runs with torch and torchvision made unimportable."""

import subprocess
import sys

from tests.conftest import REPO

SCRIPT = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'torchvision', 'sam2', 'onnx'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import numpy as np
from sam2_trt.runtime import SAM2ImagePredictor, SAM2AutomaticMaskGenerator
from tests.official_reference import scene
image = scene(120, 160)
p = SAM2ImagePredictor.load(sys.argv[1], device='cpu', max_hole_area=5, max_sprinkle_area=5)
p.set_image(image)
m, i, l = p.predict(point_coords=np.array([[50.0, 60.0]]), point_labels=np.array([1]))
p.predict(box=np.array([10.0, 10, 90, 100]), mask_input=l[:1], multimask_output=False, return_logits=True)
p.set_image_batch([image, image[:80]])
p.predict_batch([np.array([[5.0, 5.0]])] * 2, [np.array([1])] * 2)
p.get_image_embedding()
for mode in ('binary_mask', 'uncompressed_rle', 'coco_rle'):
    SAM2AutomaticMaskGenerator.load(sys.argv[1], device='cpu', points_per_side=4, output_mode=mode,
                                    pred_iou_thresh=0, stability_score_thresh=0, use_m2m=True,
                                    crop_n_layers=1).generate(image)
assert not any(k.split('.')[0] in ('torch', 'torchvision') for k in sys.modules)
print('ok', m.shape)
"""


def test_image_paths_run_without_torch(tiny512_dir):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny512_dir)], capture_output=True, text=True,
                          cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("ok (3, 120, 160)")


VIDEO_SCRIPT = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'torchvision', 'sam2', 'onnx'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import numpy as np
from sam2_trt.runtime import SAM2VideoPredictor, SAM2VideoStream
from tests.official_reference import scene
frames = np.stack([np.roll(scene(96, 128), 3 * t, axis=1) for t in range(3)])
p = SAM2VideoPredictor.load(sys.argv[1], device='cpu', non_overlap_masks=True)
state = p.init_state(frames)
p.add_new_points_or_box(state, 0, 1, points=[[40, 30]], labels=[1])
p.add_new_mask(state, 1, 2, np.ones((96, 128), bool))
out = list(p.propagate_in_video(state)) + list(p.propagate_in_video(state, start_frame_idx=1, reverse=True))
p.clear_all_prompts_in_frame(state, 1, 2)
p.remove_object(state, 2)
stream = SAM2VideoStream(p)
stream.push(frames[0]); stream.add_new_points_or_box(1, box=[10, 10, 60, 60]); stream.push(frames[1])
assert not any(k.split('.')[0] in ('torch', 'torchvision') for k in sys.modules)
print('ok', len(out), out[0][2].shape)
"""


def test_video_paths_run_without_torch(tiny512_dir):
    proc = subprocess.run([sys.executable, "-c", VIDEO_SCRIPT, str(tiny512_dir)], capture_output=True, text=True,
                          cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("ok 5 (2, 1, 96, 128)")
