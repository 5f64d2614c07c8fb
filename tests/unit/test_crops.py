"""Crop cutting and model-input preparation."""
import cv2
import numpy as np

from reid_core.crops import CROP_H, CROP_W, to_model_input, to_model_inputs


def test_batch_preparation_gives_the_same_pixels_as_resizing_each_crop():
    rng = np.random.default_rng(0)
    patches = [rng.integers(0, 256, (int(rng.integers(20, 300)), int(rng.integers(10, 150)), 3), dtype=np.uint8)
               for _ in range(20)]
    batch = to_model_inputs(patches)
    assert batch.shape == (20, CROP_H, CROP_W, 3) and batch.dtype == np.uint8
    one_by_one = [cv2.cvtColor(cv2.resize(p, (CROP_W, CROP_H), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
                  for p in patches]
    np.testing.assert_array_equal(batch, np.stack(one_by_one))
    np.testing.assert_array_equal(to_model_input(patches[3]), one_by_one[3])
    # BGR in, RGB out: a pure blue patch comes out with its blue in the last channel
    blue = np.zeros((40, 20, 3), np.uint8)
    blue[..., 0] = 255
    assert to_model_inputs([blue])[0, 0, 0].tolist() == [0, 0, 255]


def test_no_patches_give_an_empty_batch():
    assert to_model_inputs([]).shape == (0, CROP_H, CROP_W, 3)
