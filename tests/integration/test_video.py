import cv2
import numpy as np
import pytest

from reid_core.errors import VideoError
from reid_core.video import check_range, probe, read_frame, read_frames
from tests.integration.conftest import VIDEO


def test_probe_pets():
    info = probe(VIDEO)
    assert (info.width, info.height, info.frame_count) == (768, 576, 795)
    assert info.video_id == "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"


def test_range_is_inclusive_zero_based_with_stride():
    frames = [i for i, _ in read_frames(VIDEO, 10, 20, stride=5)]
    assert frames == [10, 15, 20]
    last = [i for i, _ in read_frames(VIDEO, 793, None)]
    assert last == [793, 794]


def test_frames_are_counted_as_decoded():
    # frame 7 read through the range API equals the 8th frame decoded sequentially
    cap = cv2.VideoCapture(str(VIDEO))
    for _ in range(8):
        ok, expected = cap.read()
    cap.release()
    assert np.array_equal(read_frame(VIDEO, 7), expected)


@pytest.mark.parametrize("a,b", [(0, 795), (-1, 5), (800, 810), (50, 40)])
def test_out_of_range(a, b):
    with pytest.raises(VideoError) as err:
        list(read_frames(VIDEO, a, b))
    assert "795" in str(err.value) or "negative" in str(err.value) or "after" in str(err.value)


def test_bad_stride():
    with pytest.raises(VideoError, match="stride"):
        check_range(probe(VIDEO), 0, 10, 0)


