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
from runtime import SAM2ImagePredictor, SAM2AutomaticMaskGenerator
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
