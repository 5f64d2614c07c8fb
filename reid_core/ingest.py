"""Ingest: video -> detections -> features -> tracks -> store, resumable and reusable.

Frames are processed in chunks. Each chunk is one store transaction holding its crops, features, track updates,
the run's progress and the raw detections (+ features) of its frames. If the process dies, the run stays
"partial" and invisible to queries; the next ingest of the same video and settings replays the stored
detections through a fresh tracker (tracking is deterministic) and carries on from the first uncommitted frame,
so the finished store is the same as one clean run. When the run completes, the replay data is dropped.

Decoding and detection run in a background thread while the main thread embeds, tracks and writes the previous
chunk: OpenVINO releases the GIL, so the two halves overlap on the CPU's cores.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from reid_core import crops as crop_ops
from reid_core.detection import DetectorConfig, PersonDetector
from reid_core.embedding import DEFAULT_MODEL, Embedder, load_embedder
from reid_core.errors import StoreError
from reid_core.store import CropMeta, RunRecord, Store, VideoRecord, crop_key
from reid_core.tracking import Tracker, TrackerConfig
from reid_core.types import Box, Detection, Track, VideoInfo
from reid_core.video import check_range, probe, read_frames

Progress = Callable[[int, int], None]  # (frames done, frames total)


@dataclass(frozen=True)
class IngestSettings:
    detector: DetectorConfig = DetectorConfig()
    tracker: TrackerConfig = TrackerConfig()
    embedder: str = DEFAULT_MODEL
    backend: str = "openvino"
    flip: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:16]


# $REID_EMBEDDER picks the embedder the app and CLI ingest with: a manifest model or a trained one (reid train /
# reid adapt) by name. One store holds one embedder's features (see check_store_embedder).
DEFAULT_SETTINGS = IngestSettings(embedder=os.environ.get("REID_EMBEDDER") or DEFAULT_MODEL)


def chunk_frames() -> int:
    """Processed frames per store transaction (small values make crash tests quick; results do not depend on it
    for a clean run, but a resumed run must use the same value as the run it resumes)."""
    return int(os.environ.get("REID_INGEST_CHUNK", "25"))


@dataclass
class IngestResult:
    video: VideoRecord
    run: RunRecord
    reused: bool
    resumed: bool
    tracks: int
    crops: int
    seconds: float


@dataclass
class _FrameWork:
    frame: int
    image: np.ndarray
    detections: list[Detection]
    features: np.ndarray | None = None
    assigned: list[tuple[int, int]] = field(default_factory=list)  # (detection index, tracker track number)
    pending: bytes = b""  # the tracker's input for this frame, kept until the run completes


class Models:
    """The detector and embedder, loaded once per process and shared by every ingest."""

    def __init__(self, settings: IngestSettings):
        self.detector = PersonDetector(settings.detector)
        self.embedder: Embedder = load_embedder(settings.embedder, settings.backend, settings.flip)


@lru_cache(maxsize=4)
def models_for(settings: IngestSettings) -> Models:
    return Models(settings)


def _run_id(video_id: str, from_frame: int, to_frame: int, stride: int, settings: IngestSettings) -> str:
    raw = f"{video_id}:{from_frame}:{to_frame}:{stride}:{settings.digest()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _pack_pending(work: _FrameWork, zero_weak: float) -> bytes:
    buf = io.BytesIO()
    dets = np.array([[d.box.x, d.box.y, d.box.w, d.box.h, d.score] for d in work.detections], np.float64)
    feats = work.features.copy()
    feats[[d.score < zero_weak for d in work.detections]] = 0
    np.savez(buf, dets=dets.reshape(-1, 5), feats=feats)
    return buf.getvalue()


def _unpack_pending(frame: int, payload: bytes) -> tuple[list[Detection], np.ndarray]:
    with np.load(io.BytesIO(payload)) as z:
        dets = [Detection(frame, Box(*row[:4]), float(row[4])) for row in z["dets"]]
        return dets, z["feats"]


def _detected_chunks(path: str, from_frame: int, to_frame: int, stride: int, detector: PersonDetector,
                     size: int) -> Iterator[list[_FrameWork]]:
    """Decode + detect in a background thread, one chunk ahead of the consumer."""
    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce():
        try:
            chunk = []
            for index, image in read_frames(path, from_frame, to_frame, stride):
                if stop.is_set():
                    return
                chunk.append(_FrameWork(index, image, detector.detect(image, index)))
                if len(chunk) == size:
                    q.put(chunk)
                    chunk = []
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


def _embed_and_track(chunk: list[_FrameWork], embedder: Embedder, tracker: Tracker) -> None:
    """Embed the chunk's confident detections in batches, track frame by frame (the tracker gates on appearance),
    then embed the weak detections the tracker kept. Weak boxes are only matched by IoU, so embedding them all up
    front would spend a third of the embedder's time on boxes that are mostly discarded."""
    strong = tracker.config.track_high_thresh
    todo = [(w, i) for w in chunk for i, d in enumerate(w.detections) if d.score >= strong]
    feats = _embed(embedder, [(w.image, w.detections[i].box) for w, i in todo])
    for work in chunk:
        work.features = np.zeros((len(work.detections), embedder.dim), np.float32)
    for (work, i), f in zip(todo, feats):
        work.features[i] = f
    for work in chunk:
        work.assigned = tracker.update(work.detections, work.features)
    late = [(w, i) for w in chunk for i, _ in w.assigned if w.detections[i].score < strong]
    for (work, i), f in zip(late, _embed(embedder, [(w.image, w.detections[i].box) for w, i in late])):
        work.features[i] = f  # after tracking: the tracker saw zeros for these, and the replay must too
    for work in chunk:  # what resume replays: exactly what the tracker was given
        work.pending = _pack_pending(work, zero_weak=strong)


def _embed(embedder: Embedder, items: list[tuple[np.ndarray, Box]]) -> np.ndarray:
    return embedder.embed(crop_ops.to_model_inputs([crop_ops.cut(image, box) for image, box in items]))


def detect_and_track(video_path: str | Path, from_frame: int = 0, to_frame: int | None = None, stride: int = 1,
                     settings: IngestSettings = DEFAULT_SETTINGS, progress: Progress | None = None,
                     with_features: bool = False) -> list[Track] | tuple[list[Track], dict[int, np.ndarray]]:
    """Tracks of a video without touching a store (track ids are the tracker's). Optionally their features."""
    info = probe(video_path)
    start, stop = check_range(info, from_frame, to_frame, stride)
    models = models_for(settings)
    tracker = Tracker(settings.tracker)
    tracks: dict[int, Track] = {}
    feats: dict[int, list[np.ndarray]] = {}
    total, done = len(range(start, stop + 1, stride)), 0
    for chunk in _detected_chunks(info.path, start, stop, stride, models.detector, chunk_frames()):
        _embed_and_track(chunk, models.embedder, tracker)
        for work in chunk:
            for di, tid in work.assigned:
                det = work.detections[di]
                t = tracks.setdefault(tid, Track(tid, info.video_id, Path(info.path).stem))
                t.frames.append(work.frame)
                t.boxes.append(det.box)
                t.scores.append(det.score)
                feats.setdefault(tid, []).append(work.features[di])
        done += len(chunk)
        if progress:
            progress(done, total)
    ordered = [tracks[k] for k in sorted(tracks)]
    if with_features:
        return ordered, {k: np.stack(v) for k, v in feats.items()}
    return ordered


def ingest(video_path: str | Path, store: Store, camera: str | None = None, from_frame: int = 0,
           to_frame: int | None = None, stride: int = 1, settings: IngestSettings = DEFAULT_SETTINGS,
           progress: Progress | None = None, replace: bool = False) -> IngestResult:
    """Fill the store from a video range. Reuses a completed identical run, resumes an interrupted one."""
    t0 = time.time()
    info = probe(video_path)
    start, stop = check_range(info, from_frame, to_frame, stride)
    run_id = _run_id(info.video_id, start, stop, stride, settings)
    check_store_embedder(store, settings)
    video = _register_video(store, info, camera)
    existing = store.run(run_id)
    if existing and existing.status == "complete":
        n_tracks = len(existing.track_map)
        return IngestResult(video, existing, True, False, n_tracks, existing.crops, time.time() - t0)
    _check_overlap(store, info.video_id, run_id, start, stop, replace)

    models = models_for(settings)
    tracker = Tracker(settings.tracker)
    resumed = existing is not None
    if existing is None:
        run = RunRecord(run_id, info.video_id, start, stop, stride, settings.as_dict(), next_frame=start,
                        started=time.time())
        with store.write() as txn:
            store.put_run(txn, run)
    else:
        run = existing
        for frame, payload in store.pending(run_id):  # rebuild the tracker's state exactly
            dets, feats = _unpack_pending(frame, payload)
            tracker.update(dets, feats)

    total = len(range(start, stop + 1, stride))
    done = len(range(start, run.next_frame, stride))
    if progress:
        progress(done, total)
    if run.next_frame <= stop:
        for chunk in _detected_chunks(info.path, run.next_frame, stop, stride, models.detector, chunk_frames()):
            _embed_and_track(chunk, models.embedder, tracker)
            _commit_chunk(store, run, video, chunk, last=chunk[-1].frame + stride > stop)
            done += len(chunk)
            if progress:
                progress(done, total)
    else:
        with store.write() as txn:  # killed after the last chunk but before completion was recorded
            _finish(store, txn, run)
    return IngestResult(video, store.run(run_id), False, resumed, len(run.track_map), run.crops, time.time() - t0)


def _register_video(store: Store, info: VideoInfo, camera: str | None) -> VideoRecord:
    current = store.video(info.video_id)
    if current and (camera is None or camera == current.camera):
        return current
    record = VideoRecord(info.video_id, str(Path(info.path).resolve()), camera or (current.camera if current else
                         Path(info.path).stem), info.fps, info.frame_count, info.width, info.height,
                         current.added if current else time.time())
    with store.write() as txn:
        store.put_video(txn, record)
    return record


def check_store_embedder(store: Store, settings: IngestSettings) -> None:
    """Features of different embedders are not comparable (two 512-d models give plausible-looking but meaningless
    cosines), so a store keeps the embedder of its first ingest."""
    others = {r.settings.get("embedder") for r in store.runs()} - {settings.embedder}
    if others:
        raise StoreError(f"this store holds features of {', '.join(sorted(others))}; it cannot also hold "
                         f"{settings.embedder}'s. Use another store (--store DIR / $REID_STORE) for "
                         f"{settings.embedder}, or ingest with --model {sorted(others)[0]}")


def _check_overlap(store: Store, video_id: str, run_id: str, start: int, stop: int, replace: bool) -> None:
    for other in store.runs(video_id):
        if other.run_id == run_id or other.to_frame < start or other.from_frame > stop:
            continue
        if replace:
            store.delete_run(other.run_id)
            continue
        raise StoreError(f"frames {other.from_frame}..{other.to_frame} of this video are already ingested "
                         f"(run {other.run_id}, {other.status}) with a different range or settings; "
                         f"ingest a non-overlapping range, or pass --replace to delete that run and re-ingest")


def _commit_chunk(store: Store, run: RunRecord, video: VideoRecord, chunk: list[_FrameWork], last: bool) -> None:
    with store.write() as txn:
        per_track: dict[int, list[str]] = {}
        for work in chunk:
            store.put_pending(txn, run.run_id, work.frame, work.pending)
            for di, tid in work.assigned:
                det = work.detections[di]
                store_tid = run.track_map.get(str(tid))
                if store_tid is None:
                    store_tid = store.next_track_id(txn)
                    run.track_map[str(tid)] = store_tid
                key = crop_key(video.video_id, work.frame, di)
                jpeg = crop_ops.encode_jpeg(crop_ops.cut(work.image, det.box))
                meta = CropMeta(video.video_id, video.camera, work.frame, det.box.as_list(), round(det.score, 4),
                                store_tid, run.run_id)
                store.put_crop(txn, key, jpeg, meta, work.features[di])
                per_track.setdefault(store_tid, []).append(key)
                run.crops += 1
        for tid, keys in per_track.items():
            store.append_to_track(txn, tid, video.video_id, video.camera, run.run_id, keys)
        run.next_frame = chunk[-1].frame + run.stride
        if last:
            _finish(store, txn, run)
        else:
            store.put_run(txn, run)


def _finish(store: Store, txn, run: RunRecord) -> None:
    run.status = "complete"
    run.finished = time.time()
    store.clear_pending(txn, run.run_id)
    store.put_run(txn, run)
