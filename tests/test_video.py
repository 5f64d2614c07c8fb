import cv2
import numpy as np
import pytest

from reid_core.errors import VideoError
from reid_core.video import check_range, probe, read_frame, read_frames
from tests.conftest import VIDEO


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


def test_text_file(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello, I am not a video\n" * 100)
    with pytest.raises(VideoError, match="text file, not a video"):
        probe(p)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        probe(p)


def test_png(tmp_path):
    p = tmp_path / "frame.png"
    cv2.imwrite(str(p), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(VideoError, match="image, not a video"):
        probe(p)


def test_png_renamed_as_video(tmp_path):
    p = tmp_path / "sneaky.mp4"
    ok, buf = cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))
    p.write_bytes(buf.tobytes())
    with pytest.raises(VideoError):
        info = probe(p)
        list(read_frames(p, 0, info.frame_count))  # at best a 1-frame "video": asking past it must fail


def test_truncated_mp4(tmp_path):
    full = tmp_path / "full.mp4"
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(30):
        writer.write(np.full((48, 64, 3), i * 8, np.uint8))
    writer.release()
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])  # the moov atom (index) is at the end: gone
    with pytest.raises(VideoError):
        probe(cut)


def test_missing_file(tmp_path):
    with pytest.raises(VideoError, match="no such file"):
        probe(tmp_path / "nope.avi")


def test_binary_garbage(tmp_path):
    p = tmp_path / "noise.avi"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError):
        probe(p)
