"""Files that are not videos, each refused with a VideoError (synthetic files; the real clip: tests/integration)."""
import cv2
import numpy as np
import pytest

from reid_core.errors import VideoError
from reid_core.video import probe, read_frames


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
