"""One chunk of frames from pixels to placed crops: decode + detect (a background thread, one chunk ahead),
feature sampling, embedding, tracking, interpolation of the frames between detector frames, and the replay data
that lets an interrupted ingest rebuild this state exactly. reid_core/ingest.py writes the result to the store.

Decoding and detection run in a background thread while the main thread embeds, tracks and writes the previous
chunk: OpenVINO releases the GIL, so the two halves overlap on the CPU's cores.
"""
from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from reid_core import crops as crop_ops
from reid_core import sampling, tracking
from reid_core.detection import DetectorConfig, PersonDetector
from reid_core.embedding import Embedder, load_embedder
from reid_core.settings import IngestSettings
from reid_core.tracking import Tracker
from reid_core.types import Box, Detection
from reid_core.video import read_frames


@dataclass
class FrameWork:
    frame: int
    image: np.ndarray
    detections: list[Detection]
    detected: bool = True  # False: a frame between two detector frames (detect_every > 1)
    features: np.ndarray | None = None  # one row per detection; all-zero: not embedded
    signatures: np.ndarray | None = None  # one sampling.signature row per detection
    thumb: np.ndarray | None = None  # tracking.thumbnail of a detector frame
    shot_change: bool = False  # a shot change since the previous detector frame: every track ended before it
    assigned: list[tuple[int, int]] = field(default_factory=list)  # (detection index, tracker track number)
    pending: bytes = b""  # the tracker's input for this frame, kept until the run completes
    interpolated: list[tuple[int, Box, float]] = field(default_factory=list)  # (tracker track, box, score)


@dataclass(frozen=True)
class Placed:
    """One crop a frame contributes to a track: detected (with a feature or sampled out) or interpolated."""

    bb: int  # its index in the frame (the crop key's last part)
    track: int  # the tracker's track number
    box: Box
    score: float
    feature: np.ndarray | None
    interpolated: bool


def placed_crops(work: FrameWork) -> list[Placed]:
    """The frame's crops: its assigned detections, then its interpolated boxes (numbered after the detections)."""
    out = []
    if work.detected:
        assert work.features is not None, "_embed_and_track filled the features"
        out = [Placed(di, tid, work.detections[di].box, work.detections[di].score,
                       work.features[di] if work.features[di].any() else None, False) for di, tid in work.assigned]
    n = len(work.detections)
    return out + [Placed(n + i, tid, box, score, None, True) for i, (tid, box, score) in enumerate(work.interpolated)]


@dataclass
class Carry:
    """Tracking state that crosses chunk boundaries besides the tracker's own (rebuilt from the replay on resume):
    the last detector frame's boxes (feature sampling) and where each recent track was last seen (interpolation).
    `max_gap`: frames a track may go unseen and still be interpolated across (0: no interpolation)."""

    max_gap: int = 0
    chain: sampling.ChainState = field(default_factory=sampling.ChainState)
    last: dict[int, tuple[int, Box, float]] = field(default_factory=dict)  # tracker track -> (frame, box, score)
    thumb: np.ndarray | None = None  # the last detector frame's (shot-change detection)

    def saw(self, frame: int, detections: list[Detection], assigned: list[tuple[int, int]],
            signatures: np.ndarray | None) -> None:
        self.chain.previous, self.chain.signatures = list(detections), signatures
        for di, tid in assigned:
            self.last[tid] = (frame, detections[di].box, detections[di].score)
        self.last = {tid: v for tid, v in self.last.items() if frame - v[0] <= self.max_gap}


# With detect_every K a track may miss this many detector frames in a row and still have the frames between its
# two sightings interpolated (a person missed once by the detector, or the tracker confirming a track a step late).
MISSED_DETECTIONS = 2


def carry_for(settings: IngestSettings) -> Carry:
    k = settings.detect_every
    return Carry(max_gap=(MISSED_DETECTIONS + 1) * k if k > 1 else 0)


def tracker_for(settings: IngestSettings) -> Tracker:
    """The ingest's tracker. With detect_every K > 1 it sees every K-th frame, so three of its knobs follow K (all
    determined by K, which is in the run's settings): the lost-track buffer counts detector frames, so it is cut
    by K to keep the same time; boxes K frames apart overlap less, so score fusion (IoU x detector confidence) is
    off (ultralytics' fixed 0.7 cost limit for confirming a new track otherwise rejects most new tracks) and an
    IoU of 0.1 instead of 0.2 is enough to associate. Measured on PETS09-S2L1 0-199 with K=2: IDF1 0.59 as for
    every frame, 0.68 without fusion, 0.69 with both (every frame: 0.67); purity 0.93 (0.91)."""
    config = settings.tracker
    if settings.detect_every > 1:
        config = replace(config, fuse_score=False, match_thresh=0.9,
                         track_buffer=max(1, round(config.track_buffer / settings.detect_every)))
    return Tracker(config)


class Models:
    """The detector and embedder, loaded once per process and shared by every ingest."""

    def __init__(self, settings: IngestSettings):
        self.detector = PersonDetector(settings.detector)
        self.embedder: Embedder = load_embedder(settings.embedder, settings.backend, settings.flip)


def models_for(settings: IngestSettings) -> Models:
    """The loaded models for these settings; settings that differ only in how they are used (sampling, tracker
    knobs) share them."""
    return _models(settings.detector, settings.embedder, settings.backend, settings.flip)


@lru_cache(maxsize=4)
def _models(detector: DetectorConfig, embedder: str, backend: str, flip: bool) -> Models:
    return Models(IngestSettings(detector=detector, embedder=embedder, backend=backend, flip=flip))


def pack_pending(work: FrameWork) -> bytes:
    """The frame's detections, the features the tracker was given (before any late embedding) and the boxes'
    colour signatures (feature sampling compares the next frame's with them)."""
    buf = io.BytesIO()
    dets = np.array([[d.box.x, d.box.y, d.box.w, d.box.h, d.score] for d in work.detections], np.float64)
    assert work.features is not None and work.signatures is not None, "packed after _embed_and_track filled them"
    assert work.thumb is not None, "set by _embed_and_track"
    np.savez(buf, dets=dets.reshape(-1, 5), feats=work.features, sigs=work.signatures, thumb=work.thumb,
             shot_change=np.array(work.shot_change))
    return buf.getvalue()


@dataclass
class Replayed:
    detections: list[Detection]
    features: np.ndarray
    signatures: np.ndarray | None  # None (and no thumb, no shot change) for runs paused before 2026-12-02
    thumb: np.ndarray | None
    shot_change: bool


def unpack_pending(frame: int, payload: bytes) -> Replayed:
    with np.load(io.BytesIO(payload)) as z:
        dets = [Detection(frame, Box(*row[:4]), float(row[4])) for row in z["dets"]]
        new = "sigs" in z.files
        return Replayed(dets, z["feats"], z["sigs"] if new else None, z["thumb"] if new else None,
                         bool(z["shot_change"]) if new else False)


def detected_chunks(path: str, from_frame: int, to_frame: int, stride: int, detector: PersonDetector,
                     size: int, detect_every: int = 1, origin: int | None = None) -> Iterator[list[FrameWork]]:
    """Decode + detect in a background thread, one chunk ahead of the consumer. With detect_every K, the detector
    runs on frames origin, origin + K, ... and the range's last frame; a chunk holds `size` detector frames and
    always ends on one (the frames between two detections are interpolated when the second one is tracked)."""
    origin = from_frame if origin is None else origin
    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce():
        try:
            chunk: list[FrameWork] = []
            detected = 0
            for index, image in read_frames(path, from_frame, to_frame, stride):
                if stop.is_set():
                    return
                if (index - origin) % detect_every and index != to_frame:
                    chunk.append(FrameWork(index, image, [], detected=False))
                    continue
                chunk.append(FrameWork(index, image, detector.detect(image, index)))
                detected += 1
                if detected == size:
                    q.put(chunk)
                    chunk, detected = [], 0
            if chunk:
                q.put(chunk)
            q.put(None)
        except BaseException as e:  # handed to the consumer, which re-raises it
            q.put(e)

    thread = threading.Thread(target=produce, daemon=True, name="reid-detect")
    thread.start()
    try:
        while True:
            item = q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


def embed_and_track(chunk: list[FrameWork], embedder: Embedder, tracker: Tracker, carry: Carry,
                     feature_every: int = 1) -> None:
    """Embed the chunk's confident detections that need it (all of them, or those reid_core/sampling.py picks) in
    batches, track frame by frame (the tracker gates on appearance), then embed late what the tracker's result
    asks for: the weak detections it kept (every-crop mode), or a crop of any track left without a feature in this
    chunk (sampling). Weak boxes are only matched by IoU, so embedding them all up front would spend a third of
    the embedder's time on boxes that are mostly discarded. Frames between detector frames get their tracks'
    boxes interpolated."""
    strong = tracker.config.track_high_thresh
    detected = [w for w in chunk if w.detected]
    signatures = [np.array([sampling.signature(crop_ops.cut(w.image, d.box)) for d in w.detections],
                           np.float32).reshape(len(w.detections), -1) for w in detected]
    for w, sig in zip(detected, signatures):
        w.signatures = sig
    need = sampling.needs_feature([w.detections for w in detected], signatures, carry.chain, strong, feature_every)
    todo = [(w, i) for w, flags in zip(detected, need) for i, wanted in enumerate(flags) if wanted]
    embed_into(embedder, todo, detected)
    for work in detected:
        assert work.features is not None, "zero-filled by _embed_into"
        work.thumb = tracking.thumbnail(work.image)
        work.shot_change = tracking.is_shot_change(carry.thumb, work.thumb)
        carry.thumb = work.thumb
        if work.shot_change:
            tracker.end_all()
        work.assigned = tracker.update(work.detections, work.features)
        work.pending = pack_pending(work)  # what resume replays: exactly what the tracker was given
    embed_into(embedder, late(detected, strong, feature_every), [])
    interpolate(chunk, carry)


def embed_into(embedder: Embedder, todo: list[tuple[FrameWork, int]], fresh: list[FrameWork]) -> None:
    """Embed the (frame, detection index) pairs in batches into their frames' feature rows (`fresh` frames get
    all-zero rows first)."""
    for work in fresh:
        work.features = np.zeros((len(work.detections), embedder.dim), np.float32)
    for (work, i), f in zip(todo, _embed(embedder, [(w.image, w.detections[i].box) for w, i in todo])):
        assert work.features is not None, "zero-filled before"
        work.features[i] = f


def late(detected: list[FrameWork], strong: float, feature_every: int) -> list[tuple[FrameWork, int]]:
    if feature_every <= 1:
        return [(w, i) for w in detected for i, _ in w.assigned if w.detections[i].score < strong]
    best: dict[int, tuple[float, FrameWork, int]] = {}
    featured = set()
    for w in detected:
        assert w.features is not None, "zero-filled by _embed_into"
        for i, tid in w.assigned:
            if w.features[i].any():
                featured.add(tid)
            q = sampling.quality(w.detections[i]) + (1.0 if w.detections[i].score >= strong else 0.0)
            if tid not in best or q > best[tid][0]:
                best[tid] = (q, w, i)
    return [(w, i) for tid, (_, w, i) in sorted(best.items()) if tid not in featured]


def interpolate(chunk: list[FrameWork], carry: Carry) -> None:
    """Boxes for the frames of this chunk between two sightings of a track at most carry.max_gap frames apart
    (frames the detector skipped, or detector frames where the track was missed), linear in position, size and
    score. Frames of earlier chunks are committed already and stay as they are, so a resumed ingest (which
    rebuilds `carry` from the replay) stores what a clean one does."""
    if not carry.max_gap:
        for work in chunk:
            carry.saw(work.frame, work.detections, work.assigned, work.signatures)
        return
    by_frame = {w.frame: w for w in chunk}
    for work in chunk:
        if not work.detected:
            continue
        if work.shot_change:
            carry.last.clear()
        for di, tid in work.assigned:
            if tid not in carry.last:
                continue
            f0, b0, s0 = carry.last[tid]
            b1, s1 = work.detections[di].box, work.detections[di].score
            for f in range(f0 + 1, work.frame):
                w = by_frame.get(f)
                if w is None:
                    continue
                a = (f - f0) / (work.frame - f0)
                box = Box(b0.x + a * (b1.x - b0.x), b0.y + a * (b1.y - b0.y), b0.w + a * (b1.w - b0.w),
                          b0.h + a * (b1.h - b0.h))
                w.interpolated.append((tid, box, s0 + a * (s1 - s0)))
        carry.saw(work.frame, work.detections, work.assigned, work.signatures)


def _embed(embedder: Embedder, items: list[tuple[np.ndarray, Box]]) -> np.ndarray:
    return embedder.embed(crop_ops.to_model_inputs([crop_ops.cut(image, box) for image, box in items]))
