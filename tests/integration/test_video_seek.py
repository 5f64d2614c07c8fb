"""FrameReader: frames read in any order, from any thread, equal sequential decoding; bad frames are VideoErrors."""
import os
import random
import threading

import cv2
import numpy as np
import pytest

from reid_core import video
from reid_core.errors import VideoError
from reid_core.video import FrameReader, read_frame
from tests.integration.conftest import VIDEO


def sequential(path, wanted) -> dict[int, np.ndarray]:
    """The wanted frames by plain decoding from frame 0 (the definition of a frame's index)."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    out, i = {}, 0
    while i <= max(wanted):
        ok, image = cap.read()
        assert ok, f"sequential decoding stopped at {i}"
        if i in wanted:
            out[i] = image
        i += 1
    cap.release()
    return out


@pytest.fixture(scope="module")
def pets_frames():
    wanted = sorted(set(random.Random(1).sample(range(795), 24)) | {0, 1, 63, 64, 65, 397, 790, 794})
    return sequential(VIDEO, set(wanted))


@pytest.fixture(scope="module")
def made_mp4(tmp_path_factory):
    """A short mp4v clip whose every frame differs (moving square, frame number, noise)."""
    path = tmp_path_factory.mktemp("seek") / "made.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 12, (160, 120))
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    for i in range(90):
        img = rng.integers(0, 60, (120, 160, 3), dtype=np.uint8)
        cv2.rectangle(img, (i, 20), (i + 30, 60), (0, 255, 255), -1)
        cv2.putText(img, str(i), (5, 110), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2)
        writer.write(img)
    writer.release()
    return path, sequential(path, set(range(90)))


def test_pets_random_order_equals_sequential(pets_frames):
    reader = FrameReader()
    order = list(pets_frames)
    random.Random(2).shuffle(order)
    for f in order + order[:5]:  # the repeats come from the frame cache
        assert np.array_equal(reader.read(VIDEO, f), pets_frames[f]), f
    assert reader.seek_is_exact(VIDEO)  # measured for this file: OpenCV's seek lands on the decoded frame
    assert reader.stats.seeks > 0 and reader.stats.cache_hits >= 5
    assert reader.stats.decoded < 300  # nowhere near decoding from frame 0 for each (that is > 10000 frames)


def test_next_frame_is_one_decode(pets_frames):
    reader = FrameReader()
    assert np.array_equal(reader.read(VIDEO, 790), pets_frames[790])
    before = reader.stats.decoded
    seeks = reader.stats.seeks
    reader.read(VIDEO, 794)  # just ahead of the open capture (at 791): 3 grabs and a read, no seek
    assert reader.stats.decoded - before == 4 and reader.stats.seeks == seeks
    assert np.array_equal(reader.read(VIDEO, 794), pets_frames[794])


def test_without_exact_seeking_reopens_and_grabs(pets_frames, monkeypatch):
    monkeypatch.setattr(video, "_verify_seek", lambda path, info: False)
    reader = FrameReader()
    low = [f for f in pets_frames if f <= 120]
    for f in sorted(low, reverse=True):  # every read is backwards: reopen, grab forward
        assert np.array_equal(reader.read(VIDEO, f), pets_frames[f]), f
    assert reader.stats.seeks == 0 and not reader.seek_is_exact(VIDEO)
    assert reader.stats.opens >= len(low)


def test_generated_mp4_random_order(made_mp4):
    path, frames = made_mp4
    reader = FrameReader(max_cache_bytes=0)  # no frame cache: every read decodes
    order = list(frames)
    random.Random(3).shuffle(order)
    for f in order[:40]:
        assert np.array_equal(reader.read(path, f), frames[f]), f
    assert [i for i, _ in reader.frames(path, 80, 89)] == list(range(80, 90))
    assert all(np.array_equal(img, frames[i]) for i, img in reader.frames(path, 10, 14))


def test_concurrent_readers(made_mp4):
    path, frames = made_mp4
    reader = FrameReader(max_captures=3, max_cache_bytes=0)
    errors = []

    def work(seed):
        rng = random.Random(seed)
        for _ in range(25):
            f = rng.randrange(90)
            if not np.array_equal(reader.read(path, f), frames[f]):
                errors.append(f)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(reader._captures) <= 3


def test_out_of_range_and_missing(tmp_path, made_mp4):
    reader = FrameReader()
    for bad in (795, 10_000, -1):
        with pytest.raises(VideoError, match="outside|negative"):
            reader.read(VIDEO, bad)
        with pytest.raises(VideoError, match="outside|negative"):
            read_frame(VIDEO, bad)
    with pytest.raises(VideoError, match="no such file"):
        reader.read(tmp_path / "gone.mp4", 0)
    path, _ = made_mp4
    with pytest.raises(VideoError, match="90 frames"):
        reader.read(path, 90)


def test_read_frame_uses_shared_reader(pets_frames):
    assert np.array_equal(read_frame(VIDEO, 790), pets_frames[790])
    before = video.FRAMES.stats.decoded
    assert np.array_equal(read_frame(VIDEO, 790), pets_frames[790])
    assert video.FRAMES.stats.decoded == before  # cached
    image = read_frame(VIDEO, 790)
    image[:] = 0  # the caller owns its copy
    assert np.array_equal(read_frame(VIDEO, 790), pets_frames[790])


def test_rewritten_file_is_read_again(tmp_path):
    path = tmp_path / "v.mp4"

    def write(value):
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
        for _ in range(10):
            w.write(np.full((48, 64, 3), value, np.uint8))
        w.release()

    reader = FrameReader()
    write(40)
    assert abs(int(reader.read(path, 5).mean()) - 40) < 8
    write(200)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a coarse clock could leave mtime equal
    assert abs(int(reader.read(path, 5).mean()) - 200) < 8
