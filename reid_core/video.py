"""Reading videos with OpenCV: probing, content ids, and frame ranges counted as decoded (0-based, inclusive)."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from reid_core.errors import VideoError
from reid_core.types import VideoInfo

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF????WEBP", b"II*\x00", b"MM\x00*")
# FFmpeg renders plain text files as "ANSI art" video; those codecs are never camera footage.
NON_VIDEO_FOURCCS = {"ansi", "tty "}


def _sniff(path: Path) -> str | None:
    """A reason the file is not a video, judged from its first bytes, or None."""
    with open(path, "rb") as f:
        head = f.read(4096)
    for magic in IMAGE_MAGIC:
        if len(head) >= len(magic) and all(m == ord("?") or m == h for m, h in zip(magic, head)):
            return "this is an image, not a video; upload a video file (mp4, avi, mkv, mov...)"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
            return "this is a text file, not a video"
        except UnicodeDecodeError:
            pass
    return None


def file_sha256(path: str | Path) -> str:
    st = Path(path).stat()
    return _file_sha256(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=128)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _open(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: the file is empty, not a video")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise VideoError(f"{path}: this is an image, not a video; upload a video file (mp4, avi, mkv, mov...)")
    reason = _sniff(path)
    if reason:
        raise VideoError(f"{path}: {reason}")
    # FFmpeg only: OpenCV's image-sequence backend would otherwise accept a lone picture as a 1-frame "video".
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    fourcc = (int(cap.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF).to_bytes(4, "little").decode("latin-1").lower()
    if not cap.isOpened() or fourcc in NON_VIDEO_FOURCCS:
        cap.release()
        raise VideoError(f"{path}: not a readable video (OpenCV/FFmpeg could not open it; is it a video file?)")
    return cap


def probe(path: str | Path) -> VideoInfo:
    """Open the file, decode its first frame, and report its geometry; raise VideoError if it is not a usable video."""
    path = Path(path)
    cap = _open(path)
    try:
        ok, frame = cap.read()
        if not ok or frame is None:
            raise VideoError(f"{path}: no frame could be decoded (empty, truncated or not a video)")
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or 0.0
        h, w = frame.shape[:2]
    finally:
        cap.release()
    if count <= 0:
        raise VideoError(f"{path}: the container reports no frames; re-encode it (e.g. ffmpeg -i in -c:v libx264 out.mp4)")
    return VideoInfo(path=str(path), video_id=file_sha256(path), fps=fps, frame_count=count, width=w, height=h)


def check_range(info: VideoInfo, from_frame: int = 0, to_frame: int | None = None, stride: int = 1) -> tuple[int, int]:
    """Validate a 0-based inclusive frame range against the video; return it with `to_frame` filled in."""
    last = info.frame_count - 1
    to = last if to_frame is None else int(to_frame)
    if stride < 1:
        raise VideoError(f"stride must be 1 or more, got {stride}")
    if from_frame < 0 or to < 0:
        raise VideoError(f"frame numbers are 0-based and cannot be negative (got {from_frame}..{to})")
    if from_frame > to:
        raise VideoError(f"from_frame {from_frame} is after to_frame {to}")
    if from_frame > last or to > last:
        raise VideoError(f"frames {from_frame}..{to} are outside the video: {Path(info.path).name} has "
                         f"{info.frame_count} frames, numbered 0..{last}")
    return int(from_frame), to


def read_frames(path: str | Path, from_frame: int = 0, to_frame: int | None = None,
                stride: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame_index, BGR image) for from_frame..to_frame inclusive, every `stride`-th frame.

    Frames are counted by decoding from the start (grab without retrieve for skipped ones) rather than by seeking,
    because seeking in many codecs lands on a keyframe and would silently shift every index.
    """
    path = Path(path)
    info = probe(path)
    start, stop = check_range(info, from_frame, to_frame, stride)
    cap = _open(path)
    try:
        index = 0
        while index <= stop:
            wanted = index >= start and (index - start) % stride == 0
            if wanted:
                ok, frame = cap.read()
            else:
                ok, frame = cap.grab(), None
            if not ok:
                if index <= stop and to_frame is not None:
                    raise VideoError(f"{path}: decoding stopped at frame {index} before the requested frame {stop} "
                                     f"(the file is truncated or the container's frame count is wrong)")
                return
            if wanted:
                yield index, frame
            index += 1
    finally:
        cap.release()


def read_frame(path: str | Path, frame: int) -> np.ndarray:
    """One decoded frame (BGR)."""
    for _, image in read_frames(path, frame, frame):
        return image
    raise VideoError(f"{path}: frame {frame} could not be decoded")
