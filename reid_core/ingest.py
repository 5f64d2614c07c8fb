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

import copy
import hashlib
import io
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal, cast, overload

import numpy as np
import psutil

from reid_core import crops as crop_ops
from reid_core import names
from reid_core.detection import PersonDetector
from reid_core.embedding import Embedder, load_embedder
from reid_core.errors import OverlapError, StoreError
from reid_core.settings import IngestSettings, ingest_settings
from reid_core.store import CropMeta, RunRecord, Store, VideoRecord, crop_key
from reid_core.tracking import Tracker
from reid_core.types import Box, Detection, Track, VideoInfo
from reid_core.video import check_range, probe, read_frames

Progress = Callable[[int, int], None]  # (frames done, frames total)


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
    assert work.features is not None, "packed after _embed_and_track filled the features"
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
        assert work.features is not None, "zero-filled just above"
        work.features[i] = f
    for work in chunk:
        assert work.features is not None, "zero-filled just above"
        work.assigned = tracker.update(work.detections, work.features)
    late = [(w, i) for w in chunk for i, _ in w.assigned if w.detections[i].score < strong]
    for (work, i), f in zip(late, _embed(embedder, [(w.image, w.detections[i].box) for w, i in late])):
        assert work.features is not None, "zero-filled just above"
        work.features[i] = f  # after tracking: the tracker saw zeros for these, and the replay must too
    for work in chunk:  # what resume replays: exactly what the tracker was given
        work.pending = _pack_pending(work, zero_weak=strong)


def _embed(embedder: Embedder, items: list[tuple[np.ndarray, Box]]) -> np.ndarray:
    return embedder.embed(crop_ops.to_model_inputs([crop_ops.cut(image, box) for image, box in items]))


@overload
def detect_and_track(video_path: str | Path, from_frame: int = 0, to_frame: int | None = None, stride: int = 1,
                     settings: IngestSettings | None = None, progress: Progress | None = None,
                     with_features: Literal[False] = False) -> list[Track]: ...


@overload
def detect_and_track(video_path: str | Path, from_frame: int = 0, to_frame: int | None = None, stride: int = 1,
                     settings: IngestSettings | None = None, progress: Progress | None = None, *,
                     with_features: Literal[True]) -> tuple[list[Track], dict[int, np.ndarray]]: ...


@overload
def detect_and_track(video_path: str | Path, from_frame: int = 0, to_frame: int | None = None, stride: int = 1,
                     settings: IngestSettings | None = None, progress: Progress | None = None,
                     with_features: bool = False) -> list[Track] | tuple[list[Track], dict[int, np.ndarray]]: ...


def detect_and_track(video_path: str | Path, from_frame: int = 0, to_frame: int | None = None, stride: int = 1,
                     settings: IngestSettings | None = None, progress: Progress | None = None,
                     with_features: bool = False) -> list[Track] | tuple[list[Track], dict[int, np.ndarray]]:
    """Tracks of a video without touching a store (track ids are the tracker's). Optionally their features."""
    settings = ingest_settings(settings)
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
                assert work.features is not None, "_embed_and_track filled the features"
                feats.setdefault(tid, []).append(work.features[di])
        done += len(chunk)
        if progress:
            progress(done, total)
    ordered = [tracks[k] for k in sorted(tracks)]
    if with_features:
        return ordered, {k: np.stack(v) for k, v in feats.items()}
    return ordered


def ingest(video_path: str | Path, store: Store, camera: str | None = None, from_frame: int = 0,
           to_frame: int | None = None, stride: int = 1, settings: IngestSettings | None = None,
           progress: Progress | None = None, replace: bool = False) -> IngestResult:
    """Fill the store from a video range. Reuses a completed identical run (or one completed run that covers the
    range with the same settings), resumes an interrupted one whose owner is gone, waits for one that a live
    process is writing. A run that fails (a bad file, a full disk) is rolled back, not left half-done."""
    camera = names.check_camera(camera, video_path)  # before any work; shown in the app, so no markup
    settings = ingest_settings(settings)
    t0 = time.time()
    info = probe(video_path)
    start, stop = check_range(info, from_frame, to_frame, stride)
    run_id = _run_id(info.video_id, start, stop, stride, settings)
    owner = _new_owner()
    _ACTIVE.add(owner["token"])  # before the claim: another thread must see this claim as live at once
    try:
        claim = _claim_waiting(store, info, camera, run_id, start, stop, stride, settings, owner, replace, progress)
        video = claim.video
        assert video is not None and claim.run is not None, "a reuse/new/resume claim has both (only wait lacks video)"
        if claim.action == "reuse":
            run = claim.run
            return IngestResult(video, run, True, False, len(run.track_map), run.crops, time.time() - t0)
        if claim.deleted:
            store.compact()  # --replace deleted footage: erase it from the files, as delete does
        try:
            run = _write_run(store, info, video, claim.run, settings, owner, progress)
        except Exception:
            _rollback(store, run_id, owner)
            raise
    finally:
        _ACTIVE.discard(owner["token"])
    return IngestResult(video, run, False, claim.action == "resume", len(run.track_map), run.crops,
                        time.time() - t0)


def _write_run(store: Store, info: VideoInfo, video: VideoRecord, run: RunRecord, settings: IngestSettings,
               owner: dict, progress: Progress | None) -> RunRecord:
    models = models_for(settings)
    tracker = Tracker(settings.tracker)
    start, stop, stride = run.from_frame, run.to_frame, run.stride
    _heartbeat(store, run, owner)  # model loading can take long: the lease starts again now
    for frame, payload in store.pending(run.run_id):  # rebuild the tracker's state exactly
        dets, feats = _unpack_pending(frame, payload)
        tracker.update(dets, feats)
    total = len(range(start, stop + 1, stride))
    done = len(range(start, run.next_frame, stride))
    if progress:
        progress(done, total)
    if run.next_frame <= stop:
        for chunk in _detected_chunks(info.path, run.next_frame, stop, stride, models.detector, chunk_frames()):
            _embed_and_track(chunk, models.embedder, tracker)
            run = _commit_chunk(store, run, video, chunk, owner, last=chunk[-1].frame + stride > stop)
            done += len(chunk)
            if progress:
                progress(done, total)
    else:  # killed after the last chunk but before completion was recorded
        def finish(txn):
            r = copy.deepcopy(run)
            _fence(store, txn, r, owner)
            _finish(store, txn, r)
            return r

        run = store.transact(finish)
    return run


# ---- claiming a run: overlap check and the new run in one write transaction -------------------------------------
_ACTIVE: set[str] = set()  # tokens of the ingests running in this process (a thread that died leaves none)
_HOST = socket.gethostname()


def _process_start(pid: int) -> float:
    return psutil.Process(pid).create_time()


def _new_owner() -> dict:
    return {"host": _HOST, "pid": os.getpid(), "start": _process_start(os.getpid()), "token": uuid.uuid4().hex}


def lease_seconds() -> float:
    """How long a partial run's owner may go without committing before others may take the run over ($REID_LEASE_S;
    only matters across hosts or for a hung process: a dead owner on this host is noticed at once)."""
    return float(os.environ.get("REID_LEASE_S", "600"))


def wait_seconds() -> float:
    """How long an ingest waits for another process writing the same or an overlapping range ($REID_WAIT_S)."""
    return float(os.environ.get("REID_WAIT_S", "1800"))


def owner_alive(run: RunRecord, now: float | None = None) -> bool:
    """Is the process that is writing this partial run still at it?"""
    owner = run.owner or {}
    now = time.time() if now is None else now
    if not owner or now - run.heartbeat > lease_seconds():
        return False
    if owner.get("host") != _HOST:
        return True  # another machine: only its lease can tell
    pid = owner.get("pid")
    if pid == os.getpid() and abs(owner.get("start", 0) - _process_start(pid)) < 1:
        return owner.get("token") in _ACTIVE
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - owner.get("start", 0)) < 1 and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, TypeError, ValueError):
        return False


@dataclass
class _Claim:
    action: str  # "reuse" | "new" | "resume" | "wait"
    video: VideoRecord | None
    run: RunRecord | None
    deleted: bool = False  # overlapping runs were deleted (--replace) or discarded (stale partial runs)


def _claim_waiting(store: Store, info: VideoInfo, camera: str | None, run_id: str, start: int, stop: int,
                   stride: int, settings: IngestSettings, owner: dict, replace: bool,
                   progress: Progress | None) -> _Claim:
    """Claim the run, waiting (bounded, with progress) while a live process writes this range or an overlapping
    one; afterwards the same range is reused and an overlapping one is claimed or refused as usual."""
    deadline = time.time() + wait_seconds()
    while True:
        claim = store.transact(lambda txn: _claim(store, txn, info, camera, run_id, start, stop, stride, settings,
                                                  owner, replace))
        if claim.action != "wait":
            return claim
        other = claim.run
        if time.time() > deadline:
            who = other.owner or {}
            raise StoreError(f"frames {other.from_frame}..{other.to_frame} of this video are being ingested by "
                             f"process {who.get('pid')} on {who.get('host')} (at frame {other.next_frame}); "
                             f"gave up waiting after {wait_seconds():.0f} s ($REID_WAIT_S); try again later")
        if progress:
            progress(len(range(other.from_frame, other.next_frame, other.stride)),
                     len(range(other.from_frame, other.to_frame + 1, other.stride)))
        time.sleep(0.2)


def _claim(store: Store, txn, info: VideoInfo, camera: str | None, run_id: str, start: int, stop: int, stride: int,
           settings: IngestSettings, owner: dict, replace: bool) -> _Claim:
    runs = store.runs_in(txn)
    _check_embedder(runs, settings)
    mine = [r for r in runs if r.video_id == info.video_id]
    current = store.get_video(txn, info.video_id)
    existing = next((r for r in mine if r.run_id == run_id), None)
    if existing and existing.status == "complete":
        return _Claim("reuse", _register_video(store, txn, info, camera, current), existing)
    if existing and owner_alive(existing):
        return _Claim("wait", None, existing)
    now = time.time()
    if existing:  # stale: its owner died or stopped committing; take it over
        existing.owner, existing.heartbeat = owner, now
        store.put_run(txn, existing)
        return _Claim("resume", _register_video(store, txn, info, camera, current), existing)
    if not replace:
        cover = next((r for r in mine if r.status == "complete" and r.stride == stride
                      and settings.matches(r.settings) and r.from_frame <= start and stop <= r.to_frame
                      and (start - r.from_frame) % stride == 0), None)
        if cover:  # e.g. enroll 0-49 waited for an ingest of 0-99: that run holds the footage already
            return _Claim("reuse", _register_video(store, txn, info, camera, current), cover)
    overlapping = [r for r in mine if not (r.to_frame < start or r.from_frame > stop)]
    live = [r for r in overlapping if r.status == "partial" and owner_alive(r)]
    if live:
        return _Claim("wait", None, live[0])
    _check_overlap(overlapping, replace)
    for other in overlapping:  # stale partial runs, or anything with --replace
        store.delete_run_in(txn, other.run_id)
    video = _register_video(store, txn, info, camera, current)
    run = RunRecord(run_id, info.video_id, start, stop, stride, settings.as_dict(), next_frame=start, started=now,
                    owner=owner, heartbeat=now)
    store.put_run(txn, run)
    return _Claim("new", video, run, deleted=bool(overlapping) and replace)


def _register_video(store: Store, txn, info: VideoInfo, camera: str | None,
                    current: VideoRecord | None) -> VideoRecord:
    """The video's record, written in the claim's transaction (current: as it was before any run was deleted)."""
    if current and (camera is None or camera == current.camera) and store.get_video(txn, info.video_id):
        return current
    record = VideoRecord(info.video_id, str(Path(info.path).resolve()), camera or (current.camera if current else
                         Path(info.path).stem), info.fps, info.frame_count, info.width, info.height,
                         current.added if current else time.time())
    store.put_video(txn, record)
    return record


def _check_overlap(overlapping: list[RunRecord], replace: bool) -> None:
    """Refuse to mix an overlapping complete run (of another range or settings) with a new one, unless replace.
    Stale partial runs never block: nobody is writing them and their footage was never visible."""
    for other in overlapping:
        if replace or other.status == "partial":
            continue
        raise OverlapError(f"frames {other.from_frame}..{other.to_frame} of this video are already ingested "
                         f"(run {other.run_id}, {other.status}) with a different range or settings",
                         cli_hint="ingest a non-overlapping range, or pass --replace to delete that run and re-ingest",
                         app_hint="ingest a non-overlapping range, or tick \"Replace what is stored for this range\" "
                                  "on the Ingest tab to delete that run and ingest again")


def _fence(store: Store, txn, run: RunRecord, owner: dict) -> None:
    """Inside a write: this ingest still owns the run (nobody took it over after our lease ran out)."""
    stored = store.get_run(txn, run.run_id)
    if stored is None or (stored.owner or {}).get("token") != owner["token"]:
        raise StoreError(f"the ingest of frames {run.from_frame}..{run.to_frame} was taken over or removed by "
                         f"another process (this one went {lease_seconds():.0f} s without committing); "
                         f"run the command again to use its result")


def _heartbeat(store: Store, run: RunRecord, owner: dict) -> None:
    def beat(txn):
        _fence(store, txn, run, owner)
        stored = store.get_run(txn, run.run_id)
        stored.heartbeat = time.time()
        store.put_run(txn, stored)

    store.transact(beat)


def _rollback(store: Store, run_id: str, owner: dict) -> None:
    """A run that failed part-way is deleted, so it blocks nobody and shows nothing half-done. Best effort: when
    even this write fails (a full disk), the run stays partial with a dead owner and the next ingest discards or
    resumes it."""
    def drop(txn):
        stored = store.get_run(txn, run_id)
        if stored is not None and stored.status == "partial" and (stored.owner or {}).get("token") == owner["token"]:
            store.delete_run_in(txn, run_id)

    try:
        store.transact(drop)
    except StoreError:
        pass


def check_store_embedder(store: Store, settings: IngestSettings) -> None:
    """Features of different embedders are not comparable (two 512-d models give plausible-looking but meaningless
    cosines), so a store keeps the embedder of its first ingest."""
    _check_embedder(store.runs(), settings)


def _check_embedder(runs: list[RunRecord], settings: IngestSettings) -> None:
    # every stored run's settings hold its embedder (IngestSettings.as_dict), so these are names
    others = cast("set[str]", {r.settings.get("embedder") for r in runs} - {settings.embedder})
    if others:
        raise StoreError(f"this store holds features of {', '.join(sorted(others))}; it cannot also hold "
                         f"{settings.embedder}'s",
                         cli_hint=f"use another store (--store DIR / $REID_STORE) for {settings.embedder}, or "
                                  f"ingest with --model {sorted(others)[0]}",
                         app_hint=f"start the app on another store (REID_STORE=DIR) for {settings.embedder}, or "
                                  f"with REID_EMBEDDER={sorted(others)[0]}")


def _commit_chunk(store: Store, run: RunRecord, video: VideoRecord, chunk: list[_FrameWork], owner: dict,
                  last: bool) -> RunRecord:
    """One chunk in one transaction; the run's new state is returned (a rerun after map growth starts over from
    `run`, which is not touched)."""
    jpegs = {(w.frame, di): crop_ops.encode_jpeg(crop_ops.cut(w.image, w.detections[di].box))
             for w in chunk for di, _ in w.assigned}

    def commit(txn) -> RunRecord:
        r = copy.deepcopy(run)
        _fence(store, txn, r, owner)
        per_track: dict[int, list[str]] = {}
        for work in chunk:
            store.put_pending(txn, r.run_id, work.frame, work.pending)
            for di, tid in work.assigned:
                det = work.detections[di]
                store_tid = r.track_map.get(str(tid))
                if store_tid is None:
                    store_tid = store.next_track_id(txn)
                    r.track_map[str(tid)] = store_tid
                key = crop_key(video.video_id, work.frame, di)
                meta = CropMeta(video.video_id, video.camera, work.frame, det.box.as_list(), round(det.score, 4),
                                store_tid, r.run_id)
                assert work.features is not None, "_embed_and_track filled the features"
                store.put_crop(txn, key, jpegs[(work.frame, di)], meta, work.features[di])
                per_track.setdefault(store_tid, []).append(key)
                r.crops += 1
        for tid, keys in per_track.items():
            store.append_to_track(txn, tid, video.video_id, video.camera, r.run_id, keys)
        r.next_frame = chunk[-1].frame + r.stride
        r.heartbeat = time.time()
        if last:
            _finish(store, txn, r)
        else:
            store.put_run(txn, r)
        return r

    return store.transact(commit)


def _finish(store: Store, txn, run: RunRecord) -> None:
    run.status = "complete"
    run.finished = time.time()
    run.owner, run.heartbeat = {}, 0.0  # a complete run has no owner: stores of equal content compare equal
    store.clear_pending(txn, run.run_id)
    store.put_run(txn, run)


# ---- making sure footage is in the store ------------------------------------------------------------------------
def ensure_ingested(store: Store, video: str | Path, from_frame: int = 0, to_frame: int | None = None,
                    camera: str | None = None, progress: Progress | None = None,
                    settings: IngestSettings | None = None) -> tuple[str, int, int]:
    """Ingest whatever part of the range no completed run covers yet (gaps become runs of their own, so footage
    ingested before is never recomputed). Returns (video_id, from_frame, to_frame)."""
    settings = ingest_settings(settings)
    info = probe(video)
    start, stop = check_range(info, from_frame, to_frame)
    for attempt in range(3):
        try:
            for a, b in _gaps(store, info.video_id, start, stop, settings):
                ingest(video, store, camera=camera, from_frame=a, to_frame=b, settings=settings, progress=progress)
            break
        except OverlapError:
            # Another writer finished a run over part of a gap while this one waited for it (ingest waits for live
            # writers): the gaps are different now.
            if attempt == 2:
                raise
    return info.video_id, start, stop


def _gaps(store: Store, video_id: str, start: int, stop: int, settings: IngestSettings) -> list[tuple[int, int]]:
    covered = sorted((r.from_frame, r.to_frame) for r in store.runs(video_id)
                     if r.status == "complete" and r.stride == 1 and settings.matches(r.settings))
    gaps, cursor = [], start
    for a, b in covered:
        if b < cursor or a > stop:
            continue
        if a > cursor:
            gaps.append((cursor, a - 1))
        cursor = max(cursor, b + 1)
    if cursor <= stop:
        gaps.append((cursor, stop))
    return gaps
