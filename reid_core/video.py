"""Reading videos with OpenCV: probing, content ids, frame ranges counted as decoded (0-based, inclusive), and
random access to single frames (FrameReader)."""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from reid_core.errors import VideoError
from reid_core.images import IMAGE_SUFFIXES
from reid_core.types import VideoInfo

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
        raise VideoError(f"{path}: the container reports no frames; re-encode it "
                         f"(e.g. ffmpeg -i in -c:v libx264 out.mp4)")
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
                assert frame is not None  # cap.read() returned ok, so it returned a frame
                yield index, frame
            index += 1
    finally:
        cap.release()


def read_frame(path: str | Path, frame: int) -> np.ndarray:
    """One decoded frame (BGR), counted as decoded like read_frames, through the shared FrameReader (kept-open
    captures and a small frame cache, so paging through a video does not decode it from frame 0 each time)."""
    return FRAMES.read(path, frame)


# ---- random access ----------------------------------------------------------------------------------------------
# Grabbing (decode without colour conversion) costs about 1 ms a frame at 768x576; an OpenCV seek decodes from the
# keyframe before the target: 6-150 ms, about 65 ms on average on PETS09 (long GOPs). Up to this many frames
# ahead, grabbing forward is the cheaper (and always exact) way.
SEEK_AHEAD = 64
# Seeking is checked once per video against sequential decoding, at the middle frame (capped, so the check stays
# cheap on long videos) and at a frame before it (a backward seek).
VERIFY_MAX_FRAME = 240

FileKey = tuple[str, int, int]  # resolved path, size, mtime_ns: a rewritten file is another file


@dataclass
class _Capture:
    key: FileKey
    cap: cv2.VideoCapture
    position: int = 0  # the frame the next grab() decodes
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class ReaderStats:
    """What the reader did (tests and the bench use it to show frames are not decoded from 0 each time)."""

    # counted without a lock: exact for one thread, approximate under concurrent readers
    decoded: int = 0  # frames grabbed or read from a capture
    seeks: int = 0
    opens: int = 0
    cache_hits: int = 0


class FrameReader:
    """Random access to decoded frames without decoding from frame 0 each time, safe to share between threads.

    Keeps up to `max_captures` open captures (several may be of one video), each knowing its position, and an LRU
    of decoded frames of at most `max_cache_bytes`. A frame at or shortly after an idle capture's position is
    reached by grabbing forward; anything else seeks, but only in a video whose seeking was verified to land on the
    frame that sequential decoding gives (OpenCV seeks to a keyframe and counts frames from timestamps, which is
    off for some files); otherwise the capture is reopened and grabbed forward. Each capture has its own lock, so
    concurrent readers of different places decode in parallel on different captures."""

    def __init__(self, max_captures: int = 4, max_cache_bytes: int = 64 << 20):
        self.max_captures = max_captures
        self.max_cache_bytes = max_cache_bytes
        self.stats = ReaderStats()
        self._lock = threading.Lock()  # guards the pools and verdicts below, never held while decoding
        self._captures: list[_Capture] = []  # least recently used first
        self._frames: OrderedDict[tuple[FileKey, int], np.ndarray] = OrderedDict()
        self._frame_bytes = 0
        self._infos: OrderedDict[FileKey, VideoInfo] = OrderedDict()
        self._seek_exact: dict[str, bool] = {}  # video_id -> verdict
        self._verifying: dict[str, threading.Lock] = {}

    # ---- public -------------------------------------------------------------------------------------------------
    def info(self, path: str | Path) -> VideoInfo:
        """probe(), remembered per file version."""
        path = Path(path)
        return self._info(path, _file_key(path))

    def read(self, path: str | Path, frame: int, cache: bool = True) -> np.ndarray:
        """Frame `frame` (0-based, as decoded) of the video, BGR; the caller owns the array. VideoError for a frame
        outside the video or one that cannot be decoded."""
        path = Path(path)
        key = _file_key(path)
        info = self._info(path, key)
        frame, _ = check_range(info, frame, frame)
        with self._lock:
            hit = self._frames.get((key, frame))
            if hit is not None:
                self._frames.move_to_end((key, frame))
                self.stats.cache_hits += 1
                return hit.copy()
        c = self._checkout(path, key, frame)
        try:
            image = self._decode(c, path, info, frame)
        except BaseException:
            self._drop(c)  # its position is unknown now
            raise
        finally:
            c.lock.release()
            self._trim()
        if cache:
            self._remember(key, frame, image)
            return image.copy()
        return image

    def frames(self, path: str | Path, from_frame: int, to_frame: int) -> Iterator[tuple[int, np.ndarray]]:
        """(index, BGR) for from_frame..to_frame inclusive, starting by a seek where that is exact; the frames are not
        cached (a clip would only push out the frames a viewer pages through)."""
        info = self.info(path)
        start, stop = check_range(info, from_frame, to_frame)
        for i in range(start, stop + 1):
            yield i, self.read(path, i, cache=False)

    def seek_is_exact(self, path: str | Path) -> bool:
        """Whether seeking in this video lands on the frame sequential decoding gives (checked once per video)."""
        path = Path(path)
        return self._seekable(path, self._info(path, _file_key(path)))

    def close(self) -> None:
        with self._lock:
            captures, self._captures = self._captures, []
            self._frames.clear()
            self._frame_bytes = 0
        for c in captures:
            with c.lock:
                c.cap.release()

    # ---- internals ----------------------------------------------------------------------------------------------
    def _info(self, path: Path, key: FileKey) -> VideoInfo:
        with self._lock:
            info = self._infos.get(key)
            if info is not None:
                self._infos.move_to_end(key)
                return info
        info = probe(path)
        with self._lock:
            self._infos[key] = info
            while len(self._infos) > 64:
                self._infos.popitem(last=False)
        return info

    def _checkout(self, path: Path, key: FileKey, frame: int) -> _Capture:
        """An idle capture of the file, locked: the one closest behind `frame` if any, else the least useful one;
        a new one when every capture of the file is busy."""
        with self._lock:
            idle = [c for c in self._captures if c.key == key and c.lock.acquire(blocking=False)]
            behind = [c for c in idle if c.position <= frame]
            chosen = max(behind, key=lambda c: c.position) if behind else (
                min(idle, key=lambda c: c.position) if idle else None)
            for c in idle:
                if c is not chosen:
                    c.lock.release()
            if chosen is not None:
                self._captures.remove(chosen)
                self._captures.append(chosen)
                return chosen
        c = _Capture(key, _open(path))
        c.lock.acquire()
        with self._lock:
            self.stats.opens += 1
            self._captures.append(c)
        self._trim()
        return c

    def _trim(self) -> None:
        """Close idle captures beyond the limit, least recently used first. Busy ones stay: the pool may exceed
        the limit while more readers than captures are at work, and shrinks back as they finish."""
        closing = []
        with self._lock:
            excess = len(self._captures) - self.max_captures
            for c in list(self._captures):
                if excess <= 0:
                    break
                if c.lock.acquire(blocking=False):
                    self._captures.remove(c)
                    closing.append(c)
                    excess -= 1
        for c in closing:
            c.cap.release()
            c.lock.release()

    def _drop(self, c: _Capture) -> None:
        with self._lock:
            if c in self._captures:
                self._captures.remove(c)
        c.cap.release()

    def _decode(self, c: _Capture, path: Path, info: VideoInfo, frame: int) -> np.ndarray:
        gap = frame - c.position
        if gap < 0 or gap > SEEK_AHEAD:
            if self._seekable(path, info) and c.cap.set(cv2.CAP_PROP_POS_FRAMES, frame):
                self.stats.seeks += 1
                c.position = frame
            elif gap < 0:
                c.cap.release()
                c.cap, c.position = _open(path), 0
                self.stats.opens += 1
        while c.position < frame:
            if not c.cap.grab():
                raise _stopped(path, c.position, frame)
            c.position += 1
            self.stats.decoded += 1
        ok, image = c.cap.read()
        if not ok or image is None:
            raise _stopped(path, frame, frame)
        c.position += 1
        self.stats.decoded += 1
        return image

    def _seekable(self, path: Path, info: VideoInfo) -> bool:
        with self._lock:
            verdict = self._seek_exact.get(info.video_id)
            if verdict is not None:
                return verdict
            gate = self._verifying.setdefault(info.video_id, threading.Lock())
        with gate:  # one check per video, however many readers ask at once
            with self._lock:
                verdict = self._seek_exact.get(info.video_id)
            if verdict is None:
                verdict = _verify_seek(path, info)
                with self._lock:
                    self._seek_exact[info.video_id] = verdict
        return verdict

    def _remember(self, key: FileKey, frame: int, image: np.ndarray) -> None:
        if image.nbytes > self.max_cache_bytes:
            return
        with self._lock:
            old = self._frames.pop((key, frame), None)
            if old is not None:
                self._frame_bytes -= old.nbytes
            self._frames[(key, frame)] = image
            self._frame_bytes += image.nbytes
            while self._frame_bytes > self.max_cache_bytes:
                _, gone = self._frames.popitem(last=False)
                self._frame_bytes -= gone.nbytes


def _file_key(path: Path) -> FileKey:
    try:
        st = path.stat()
    except OSError:
        raise VideoError(f"{path}: no such file") from None
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def _stopped(path: Path, index: int, wanted: int) -> VideoError:
    return VideoError(f"{path}: decoding stopped at frame {index} before the requested frame {wanted} "
                      f"(the file is truncated or the container's frame count is wrong)")


def _verify_seek(path: Path, info: VideoInfo) -> bool:
    """Seek to two frames (forward, then back) and compare them with sequential decoding, pixel for pixel."""
    middle = min(info.frame_count // 2, VERIFY_MAX_FRAME)
    if middle < 2:
        return False  # nothing worth seeking in
    targets = (middle, middle // 2 + 1)
    reference: dict[int, np.ndarray] = {}
    seq = _open(path)
    try:
        for i in range(middle + 1):
            ok = seq.grab()
            if not ok:
                return False
            if i in targets:
                ok, reference[i] = seq.retrieve()
                if not ok:
                    return False
    finally:
        seq.release()
    cap = _open(path)
    try:
        for t in targets:
            if not cap.set(cv2.CAP_PROP_POS_FRAMES, t):
                return False
            ok, image = cap.read()
            if not ok or image is None or not np.array_equal(image, reference[t]):
                return False
    finally:
        cap.release()
    return True


FRAMES = FrameReader()  # the process's shared reader: the app's concurrent requests page through the same videos
