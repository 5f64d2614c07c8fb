"""Wall-clock time of videos: a camera's start time from the user (ISO-8601) or the container, and the time of any
frame as start + frame / fps. Without a start, times are per video only ("unknown"), and nothing that needs a shared
clock (the st model, reid_core/spacetime.py) uses them.

Container metadata is read without new dependencies: the MP4/MOV movie header ("mvhd" creation_time, seconds since
1904-01-01 UTC). Most encoders that are not cameras write 0 there, and AVI has no standard field: both are unknown.
"""
from __future__ import annotations

import datetime as dt
import struct
from dataclasses import replace
from pathlib import Path

from reid_core.errors import InputError

CLI, CONTAINER, UNKNOWN = "cli", "container", "unknown"
_MP4_EPOCH = dt.datetime(1904, 1, 1, tzinfo=dt.UTC).timestamp()
_EARLIEST = dt.datetime(1990, 1, 1, tzinfo=dt.UTC).timestamp()  # a creation time before this is a blank


def parse_start(text: str) -> float:
    """ISO-8601 date and time -> UTC epoch seconds. Without a UTC offset the time is taken as UTC."""
    try:
        t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InputError(f"start time {text!r} is not ISO-8601 date and time (expected e.g. 2026-12-02T10:15:00Z or "
                         f"2026-12-02T11:15:00.5+01:00)") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.timestamp()


def iso(t: float | None) -> str | None:
    """UTC epoch seconds -> '2026-12-02T10:15:03.200Z' (None stays None)."""
    if t is None:
        return None
    s = dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="milliseconds")
    return s.replace("+00:00", "Z")


def frame_time(start: float | None, fps: float, frame: int) -> float | None:
    """The wall-clock time of a frame; None when the start or the frame rate is unknown."""
    if start is None or not fps or fps <= 0:
        return None
    return start + frame / fps


def container_start(path: str | Path) -> float | None:
    """The creation time an MP4/MOV file's movie header gives, or None (other containers, blank, unreadable)."""
    try:
        with open(path, "rb") as f:
            moov = _find_box(f, b"moov", 0, Path(path).stat().st_size)
            if moov is None:
                return None
            mvhd = _find_box(f, b"mvhd", *moov)
            if mvhd is None:
                return None
            f.seek(mvhd[0])
            head = f.read(12)
            if len(head) < 12:
                return None
            version = head[0]
            secs = struct.unpack(">Q", head[4:12])[0] if version == 1 else struct.unpack(">I", head[4:8])[0]
    except (OSError, struct.error):
        return None
    t = _MP4_EPOCH + secs
    return t if t >= _EARLIEST else None


def _find_box(f, name: bytes, start: int, end: int) -> tuple[int, int] | None:
    """(payload start, payload end) of the first box `name` among the boxes in [start, end)."""
    pos = start
    while pos + 8 <= end:
        f.seek(pos)
        head = f.read(8)
        if len(head) < 8:
            return None
        size, kind = struct.unpack(">I", head[:4])[0], head[4:]
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", f.read(8))[0], 16
        elif size == 0:
            size = end - pos
        if size < header:
            return None
        if kind == name:
            return pos + header, pos + size
        pos += size
    return None


def resolve_start(path: str | Path, start: str | float | None) -> tuple[float | None, str]:
    """(start, source): the user's start (ISO-8601 text or epoch seconds) wins, then the container's, else unknown."""
    if isinstance(start, str):
        return parse_start(start), CLI
    if start is not None:
        return float(start), CLI
    t = container_start(path)
    return (t, CONTAINER) if t is not None else (None, UNKNOWN)


def stamp(store, video, start: float | None, source: str):
    """The stored video record with this start time (Store, VideoRecord): a start given by the user replaces any
    other; the container's fills only an unknown one; unknown changes nothing."""
    if source == UNKNOWN or start is None or (source == CONTAINER and video.start is not None) \
            or (video.start == start and video.start_source == source):
        return video

    def put(txn):
        current = store.get_video(txn, video.video_id) or video
        updated = replace(current, start=start, start_source=source)
        store.put_video(txn, updated)
        return updated

    return store.transact(put)
