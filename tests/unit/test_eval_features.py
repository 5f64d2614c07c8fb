"""Feature-level steps: query expansion, gallery augmentation, track blending and matching crops to tracks."""
import numpy as np
import pytest

from reid_core.errors import InputError
from reid_core.evaluation.features import (
    assign_to_tracks,
    average_query_expansion,
    blend,
    database_augmentation,
    group_means,
)
from reid_core.types import Box, Track


def unit(*rows):
    a = np.array(rows, np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_average_query_expansion_adds_the_nearest_gallery_items():
    q = unit([1, 0, 0])
    g = unit([1, 1, 0], [0, 0, 1], [1, -1, 0])
    out = average_query_expansion(q, g, 2)
    # nearest two: g0 and g2 (cos 0.707 each); the mean with the query stays along x
    np.testing.assert_allclose(out, unit([1 + 2 / np.sqrt(2), 0, 0]), atol=1e-6)
    assert average_query_expansion(q, g, 0) is q
    with pytest.raises(InputError):
        average_query_expansion(q, g, -1)


def test_database_augmentation_averages_each_item_with_its_neighbours():
    g = unit([1, 0], [0.9, 0.1], [0, 1])
    out = database_augmentation(g, 1)
    np.testing.assert_allclose(out[0], unit(g[0] + g[1])[0], atol=1e-6)  # itself + its nearest other
    np.testing.assert_allclose(out[2], unit(g[2] + g[1])[0], atol=1e-6)
    assert database_augmentation(g, 0) is g


def test_blend_and_group_means():
    own, mean = unit([1, 0]), unit([0, 1])
    np.testing.assert_allclose(blend(own, mean, 0.5), unit([1, 1]), atol=1e-6)
    np.testing.assert_allclose(blend(own, mean, 1.0), mean, atol=1e-6)
    with pytest.raises(InputError):
        blend(own, mean, 1.5)
    f = unit([1, 0], [0, 1], [1, 1])
    m = group_means(f, np.array([7, 7, 3]))
    np.testing.assert_allclose(m[0], unit([1, 1])[0], atol=1e-6)
    np.testing.assert_allclose(m[0], m[1])
    np.testing.assert_allclose(m[2], f[2], atol=1e-6)
    pairs = group_means(f, np.array([[1, 0], [1, 0], [1, 1]]))  # 2-D labels: (track, camera)
    np.testing.assert_allclose(pairs[0], m[0])


def test_crops_are_matched_to_the_overlapping_track_box_in_their_frame():
    a = Track(1, "v", "c", frames=[10, 11], boxes=[Box(0, 0, 10, 20), Box(1, 0, 10, 20)])
    b = Track(2, "v", "c", frames=[10], boxes=[Box(50, 0, 10, 20)])
    frames = np.array([10, 10, 11, 12, 10])
    boxes = [Box(0, 0, 10, 20),     # -> track a
             Box(51, 1, 10, 20),    # -> track b (IoU 0.73)
             Box(1, 0, 10, 20),     # frame 11 -> track a
             Box(0, 0, 10, 20),     # frame 12: no track box
             Box(30, 0, 10, 20)]    # overlaps nothing
    got = assign_to_tracks(frames, boxes, [a, b])
    assert got.track_index.tolist() == [0, 1, 0, -1, -1]
    assert (got.matched, got.total) == (3, 5)
    # one-to-one: two crops on the same track box, only the better one is matched
    twin = assign_to_tracks(np.array([10, 10]), [Box(0, 0, 10, 20), Box(1, 1, 10, 20)], [a])
    assert twin.track_index.tolist() == [0, -1]
