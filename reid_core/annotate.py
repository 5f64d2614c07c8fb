"""Pictures of results: boxes and labels drawn on frames, annotated MP4 clips of an identify result or of an
identity's sightings, and the app's frame viewer.

Named people are green, unknown ones amber. Labels are rendered with Pillow's bundled font rather than OpenCV's
Hershey fonts, which know only ASCII (names and the "·" separator are not); a rendered label is cached, since the
same label repeats on every frame of a track.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from reid_core import checks
from reid_core.errors import InputError, VideoError
from reid_core.matching import TrackDecision
from reid_core.sightings import ENROLLED, Sighting
from reid_core.store import Store
from reid_core.types import Box, Track
from reid_core.video import FRAMES, check_range, file_sha256, probe, read_frame

KNOWN_BGR = (0, 200, 0)  # green
UNKNOWN_BGR = (0, 176, 255)  # amber (#FFB000)
STAMP_BG = (0, 0, 0)
FALLBACK_FPS = 25.0  # for a clip of a video whose container gives no frame rate


@dataclass(frozen=True)
class Overlay:
    box: Box
    label: str
    known: bool  # a named identity (green) or unknown (amber)
    emphasis: bool = False  # drawn thicker: the track the viewer is looking at


@dataclass
class ClipResult:
    path: Path
    frames: int
    skipped: list[str] = field(default_factory=list)  # sightings left out, each with the reason


# ---- drawing ----------------------------------------------------------------------------------------------------
def _thickness(image: np.ndarray) -> int:
    return max(2, round(min(image.shape[:2]) / 200))  # 3 px at 576 lines: survives MP4 compression


def _font_px(image: np.ndarray) -> int:
    return max(10, round(min(image.shape[:2]) / 36))


@lru_cache(maxsize=8)
def _font(px: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=px)


@lru_cache(maxsize=1024)
def _text_patch(text: str, px: int, bg: tuple[int, int, int], fg: tuple[int, int, int]) -> np.ndarray:
    """The text on a filled background, BGR."""
    from PIL import Image, ImageDraw

    font = _font(px)
    pad = max(2, px // 5)
    left, top, right, bottom = font.getbbox(text)
    ascent, descent = font.getmetrics()
    w, h = max(1, right - left) + 2 * pad, ascent + descent + 2 * pad
    img = Image.new("RGB", (w, h), bg[::-1])
    ImageDraw.Draw(img).text((pad - left, pad), text, font=font, fill=fg[::-1])
    patch = np.asarray(img)[:, :, ::-1].copy()
    patch.flags.writeable = False
    return patch


def _paste(image: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    h, w = image.shape[:2]
    ph, pw = patch.shape[:2]
    x, y = min(max(0, x), max(0, w - pw)), min(max(0, y), max(0, h - ph))
    region = image[y:y + ph, x:x + pw]
    region[:] = patch[:region.shape[0], :region.shape[1]]


def draw(image_bgr: np.ndarray, overlays: list[Overlay]) -> np.ndarray:
    """A copy of the image with each overlay's box and label (a filled tag above the box, inside it at the top
    edge), sized to the image. The emphasised overlays are drawn last, on top."""
    out = image_bgr.copy()
    thick, px = _thickness(out), _font_px(out)
    ordered = sorted(overlays, key=lambda o: o.emphasis)
    for o in ordered:
        colour = KNOWN_BGR if o.known else UNKNOWN_BGR
        x1, y1, x2, y2 = (int(round(v)) for v in o.box.xyxy)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thick * 2 if o.emphasis else thick)
    for o in ordered:
        if not o.label:
            continue
        colour = KNOWN_BGR if o.known else UNKNOWN_BGR
        patch = _text_patch(o.label, px, colour, (0, 0, 0))
        x1, y1 = int(round(o.box.x)), int(round(o.box.y))
        y = y1 - patch.shape[0] if y1 - patch.shape[0] >= 0 else y1
        _paste(out, patch, x1, y)
    return out


def stamp(image_bgr: np.ndarray, text: str) -> np.ndarray:
    """The text small in the bottom-left corner, white on black (in place; returns the image)."""
    patch = _text_patch(text, max(9, _font_px(image_bgr) * 3 // 4), STAMP_BG, (255, 255, 255))
    _paste(image_bgr, patch, 0, image_bgr.shape[0] - patch.shape[0])
    return image_bgr


def decision_label(d: TrackDecision) -> str:
    if d.match.identity is None:
        return f"unknown · track {d.label}"
    return f"{d.match.identity} · {round(d.match.score * 100)}% · track {d.label}"


def overlays_for_decisions(decisions: list[TrackDecision]) -> dict[int, list[Overlay]]:
    """frame -> the overlays of every decision with a box there."""
    out: dict[int, list[Overlay]] = {}
    for d in decisions:
        label, known = decision_label(d), d.match.identity is not None
        for f, b in zip(d.frames, d.boxes):
            out.setdefault(int(f), []).append(Overlay(b, label, known))
    return out


def _time_text(frame: int, fps: float, caption: str = "") -> str:
    when = f"frame {frame}" + (f" · {frame / fps:.1f} s" if fps and fps > 0 else "")
    return f"{caption} · {when}" if caption else when


# ---- writing clips ----------------------------------------------------------------------------------------------
_AVC1_OK: bool | None = None  # whether this OpenCV build can encode H.264; learnt once (a failed try logs noise)


def _open_writer(path: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """An MP4 writer: H.264 ('avc1', which browsers play) where this OpenCV build has an encoder for it, else
    MPEG-4 part 2 ('mp4v', which players and OpenCV read, browsers mostly do not)."""
    global _AVC1_OK
    if _AVC1_OK is not False:
        w = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"avc1"), fps, size)
        _AVC1_OK = w.isOpened()
        if _AVC1_OK:
            return w
        w.release()
    w = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    if not w.isOpened():
        w.release()
        raise VideoError(f"cannot write {path.name}: this OpenCV build has no MP4 encoder (neither avc1 nor mp4v)")
    return w


class _Clip:
    """One MP4 being written: to a hidden temporary file beside the target, renamed over it only when complete,
    so an error (or a crash) never leaves a half-written clip under the wanted name."""

    def __init__(self, out: Path, fps: float, size: tuple[int, int]):
        self.out, self.size = out, size
        fd, tmp = tempfile.mkstemp(dir=out.parent if str(out.parent) else ".", prefix=f".{out.stem}.",
                                   suffix=".part.mp4")
        os.close(fd)
        self.tmp = Path(tmp)
        self.frames = 0
        try:
            self.writer = _open_writer(self.tmp, fps, size)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(image)
        self.frames += 1

    def __enter__(self) -> _Clip:
        return self

    def __exit__(self, kind, error, tb) -> None:
        self.writer.release()
        if kind is None and self.frames and self.tmp.stat().st_size > 0:
            os.replace(self.tmp, self.out)
            return
        self.tmp.unlink(missing_ok=True)
        if kind is None:
            raise VideoError(f"no frame was written to {self.out.name}")


def export_clip(video_path: str | Path, overlays_by_frame: dict[int, list[Overlay]], out_path: str | Path,
                from_frame: int, to_frame: int, fps: float | None = None, caption: str = "") -> Path:
    """Frames from_frame..to_frame (inclusive) of the video with their overlays drawn and a frame/time stamp (and
    the caption, e.g. the camera) in a corner, as an MP4 at `fps` (default: the video's own)."""
    out = checks.output_path(out_path, (".mp4",), "the clip (MP4)")
    if fps is not None and not (fps > 0 and np.isfinite(fps)):
        raise InputError(f"the clip's frame rate must be more than 0, got {fps}")
    info = FRAMES.info(video_path)
    start, stop = check_range(info, from_frame, to_frame)
    with _Clip(out, fps or info.fps or FALLBACK_FPS, (info.width, info.height)) as clip:
        for i, image in FRAMES.frames(video_path, start, stop):
            clip.write(stamp(draw(image, overlays_by_frame.get(i, [])), _time_text(i, info.fps, caption)))
    return out


def identify_clip(store: Store, video_path: str | Path, decisions: list[TrackDecision],
                  out_path: str | Path) -> ClipResult:
    """The identify result as a clip: from the first to the last frame of the decisions, every track boxed and
    labelled (name, score and track, or unknown)."""
    frames = [f for d in decisions for f in d.frames]
    if not frames:
        raise InputError("there are no tracks to draw: the result list is empty")
    record = next((store.video(d.video_id) for d in decisions if d.video_id), None)
    path = export_clip(video_path, overlays_for_decisions(decisions), out_path, min(frames), max(frames),
                       caption=record.camera if record else "")
    return ClipResult(path, max(frames) - min(frames) + 1)


def sighting_label(s: Sighting) -> str:
    how = "enrolled" if s.source == ENROLLED or s.score is None else f"{round(s.score * 100)}%"
    return f"{s.identity} · {how} · track {s.track}"


def sightings_clip(store: Store, found: list[Sighting], out_path: str | Path, pad_frames: int = 0,
                   max_frames: int | None = None) -> ClipResult:
    """The sightings one after another (their frames +- pad_frames, in the order given), each from its stored
    video, resized to the first video's size, with the identity's boxes only. A sighting whose video is gone from
    its stored path (or is another file now) is skipped and named in ClipResult.skipped; at most max_frames."""
    out = checks.output_path(out_path, (".mp4",), "the clip (MP4)")
    if not found:
        raise InputError("there are no sightings to put in a clip")
    if pad_frames < 0:
        raise InputError(f"the padding must be 0 or more frames, got {pad_frames}")
    if max_frames is not None and max_frames < 1:
        raise InputError(f"the clip needs at least 1 frame, got a limit of {max_frames}")
    usable, skipped = [], []
    for s in found:
        record = store.video(s.video_id)
        path = Path(s.video or (record.path if record else ""))
        what = f"{s.camera} track {s.track} (frames {s.first_frame}..{s.last_frame})"
        if not str(path) or not path.is_file():
            skipped.append(f"{what}: its video {str(path) or '(no path stored)'} is not there any more")
            continue
        try:
            if file_sha256(path) != s.video_id:
                skipped.append(f"{what}: {path} is not the video that was ingested (its content changed)")
                continue
            info = FRAMES.info(path)
        except (VideoError, OSError) as e:
            skipped.append(f"{what}: {e}")
            continue
        usable.append((s, path, info))
    if not usable:
        raise VideoError("none of the sightings' videos can be read: " + "; ".join(skipped))
    first = usable[0][2]
    written = 0
    with _Clip(out, first.fps or FALLBACK_FPS, (first.width, first.height)) as clip:
        for s, path, info in usable:
            boxes = dict(s.boxes)
            label = sighting_label(s)
            a = max(0, s.first_frame - pad_frames)
            b = min(info.frame_count - 1, s.last_frame + pad_frames)
            if max_frames is not None:
                if written >= max_frames:
                    break
                b = min(b, a + max_frames - written - 1)
            for i, image in FRAMES.frames(path, a, b):
                overlays = [Overlay(boxes[i], label, True)] if i in boxes else []
                clip.write(stamp(draw(image, overlays), _time_text(i, info.fps, s.camera)))
                written += 1
    return ClipResult(out, written, skipped)


# ---- the frame viewer -------------------------------------------------------------------------------------------
def _resolve_video(store: Store, video: str | Path) -> tuple[Path, str | None]:
    """(path, video_id if known) for a stored video id or a video file."""
    text = str(video)
    record = store.video(text) if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else None
    if record is not None:
        path = Path(record.path)
        if not path.is_file():
            raise VideoError(f"video {text[:12]} was ingested from {record.path}, which is not there any more")
        return path, record.video_id
    path = Path(video)
    if not path.is_file():
        raise VideoError(f"{text}: neither a stored video id nor a video file")
    return path, None


def frame_view(store: Store, video_id_or_path: str | Path, frame: int,
               decisions_or_tracks: list[TrackDecision] | list[Track] | None = None,
               highlight: int | str | None = None) -> np.ndarray:
    """The whole frame, RGB, with every box at that frame: the given decisions (named green, unknown amber) or
    tracks, or else the stored tracks of the video there. `highlight` (a track id, or a label such as "12.2")
    is drawn thicker."""
    path, video_id = _resolve_video(store, video_id_or_path)
    image = read_frame(path, frame)
    items = decisions_or_tracks
    if items is None:
        items = store.tracks(video_id or probe(path).video_id, frame, frame)
    overlays = []
    for item in items:
        box = next((b for f, b in zip(item.frames, item.boxes) if f == frame), None)
        if box is None:
            continue
        hot = highlight is not None and str(highlight) in (item.label, str(item.track_id))
        if isinstance(item, TrackDecision):
            overlays.append(Overlay(box, decision_label(item), item.match.identity is not None, hot))
        else:
            overlays.append(Overlay(box, f"track {item.label}", False, hot))
    return cv2.cvtColor(draw(image, overlays), cv2.COLOR_BGR2RGB)
