"""Ingest: video -> detections -> features -> tracks -> store, resumable and reusable.

Frames are processed in chunks. Each chunk is one store transaction holding its crops, features, track updates,
the run's progress and the raw detections (+ features) of its frames. If the process dies, the run stays
"partial" and invisible to queries; the next ingest of the same video and settings replays the stored
detections through a fresh tracker (tracking is deterministic) and carries on from the first uncommitted frame,
so the finished store is the same as one clean run. When the run completes, the replay data is dropped.

What happens to a chunk before it is written (detection, sampling, embedding, tracking, interpolation) is in
reid_core/chunks.py.
"""
from __future__ import annotations

import copy
import hashlib
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast, overload

import numpy as np
import psutil

from reid_core import clock, names, sampling
from reid_core import crops as crop_ops
from reid_core.chunks import (
    FrameWork,
    carry_for,
    detected_chunks,
    embed_and_track,
    models_for,
    placed_crops,
    tracker_for,
    unpack_pending,
)
from reid_core.errors import InputError, OverlapError, StoreError
from reid_core.settings import IngestSettings, ingest_settings
from reid_core.store import CropMeta, RunRecord, Store, VideoRecord, crop_key
from reid_core.types import Track, VideoInfo
from reid_core.video import check_range, probe

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


def _run_id(video_id: str, from_frame: int, to_frame: int, stride: int, settings: IngestSettings) -> str:
    raw = f"{video_id}:{from_frame}:{to_frame}:{stride}:{settings.digest()}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


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
    info = probe(video_path)
    settings = ingest_settings(settings).for_video(info.fps, stride)
    start, stop = check_range(info, from_frame, to_frame, stride)
    _check_sampling(settings, stride)
    models = models_for(settings)
    tracker, carry = tracker_for(settings), carry_for(settings)
    tracks: dict[int, Track] = {}
    feats: dict[int, list[np.ndarray]] = {}
    total, done = len(range(start, stop + 1, stride)), 0
    for chunk in detected_chunks(info.path, start, stop, stride, models.detector, chunk_frames(),
                                  settings.detect_every):
        embed_and_track(chunk, models.embedder, tracker, carry, settings.feature_every)
        for work in chunk:
            for p in placed_crops(work):
                t = tracks.setdefault(p.track, Track(p.track, info.video_id, Path(info.path).stem))
                t.frames.append(work.frame)
                t.boxes.append(p.box)
                t.scores.append(p.score)
                feats.setdefault(p.track, []).append(np.zeros(models.embedder.dim, np.float32)
                                                     if p.feature is None else p.feature)
        done += len(chunk)
        if progress:
            progress(done, total)
    ordered = [tracks[k] for k in sorted(tracks)]
    if with_features:  # sampled-out crops take their nearest sampled neighbour's, as flows read them from a store
        out = {}
        for k, v in feats.items():
            f = np.stack(v)
            out[k] = sampling.fill(f, np.asarray(f.any(axis=1)), tracks[k].frames)
        return ordered, out
    return ordered


def _check_sampling(settings: IngestSettings, stride: int) -> None:
    if settings.feature_every < 1 or settings.detect_every < 1:
        raise InputError(f"feature_every and detect_every must be at least 1 (got {settings.feature_every}, "
                         f"{settings.detect_every})")
    if settings.detect_every > 1 and stride > 1:
        raise InputError("detecting every K-th frame stores every frame; it cannot be combined with a stride > 1",
                         cli_hint="use either --stride or --detect-every")


def ingest(video_path: str | Path, store: Store, camera: str | None = None, from_frame: int = 0,
           to_frame: int | None = None, stride: int = 1, settings: IngestSettings | None = None,
           progress: Progress | None = None, replace: bool = False,
           start_time: str | float | None = None) -> IngestResult:
    """Fill the store from a video range. Reuses a completed identical run (or one completed run that covers the
    range with the same settings), resumes an interrupted one whose owner is gone, waits for one that a live
    process is writing. A run that fails (a bad file, a full disk) is rolled back, not left half-done.
    start_time: the wall clock of frame 0 (ISO-8601 text or UTC epoch seconds); else the container's, else unknown
    (reid_core/clock.py)."""
    camera = names.check_camera(camera, video_path)  # before any work; shown in the app, so no markup
    start_t, start_source = clock.resolve_start(video_path, start_time)  # a bad start fails before any work too
    t0 = time.time()
    info = probe(video_path)
    settings = ingest_settings(settings).for_video(info.fps, stride)
    _check_sampling(settings, stride)
    start, stop = check_range(info, from_frame, to_frame, stride)
    run_id = _run_id(info.video_id, start, stop, stride, settings)
    owner = _new_owner()
    _ACTIVE.add(owner["token"])  # before the claim: another thread must see this claim as live at once
    try:
        claim = _claim_waiting(store, info, camera, run_id, start, stop, stride, settings, owner, replace, progress)
        assert claim.video is not None and claim.run is not None, "a reuse/new/resume claim has both"
        video = clock.stamp(store, claim.video, start_t, start_source)
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
    tracker, carry = tracker_for(settings), carry_for(settings)
    start, stop, stride = run.from_frame, run.to_frame, run.stride
    _heartbeat(store, run, owner)  # model loading can take long: the lease starts again now
    for frame, payload in store.pending(run.run_id):  # rebuild the tracker's state exactly
        r = unpack_pending(frame, payload)
        if r.shot_change:
            tracker.end_all()
            carry.last.clear()
        carry.thumb = r.thumb
        carry.saw(frame, r.detections, tracker.update(r.detections, r.features), r.signatures)
    total = len(range(start, stop + 1, stride))
    done = len(range(start, run.next_frame, stride))
    if progress:
        progress(done, total)
    if run.next_frame <= stop:
        for chunk in detected_chunks(info.path, run.next_frame, stop, stride, models.detector, chunk_frames(),
                                      settings.detect_every, origin=start):
            embed_and_track(chunk, models.embedder, tracker, carry, settings.feature_every)
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
                      and settings.covers(r.settings) and r.from_frame <= start and stop <= r.to_frame
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
                         current.added if current else time.time(), current.start if current else None,
                         current.start_source if current else clock.UNKNOWN)
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


def _commit_chunk(store: Store, run: RunRecord, video: VideoRecord, chunk: list[FrameWork], owner: dict,
                  last: bool) -> RunRecord:
    """One chunk in one transaction; the run's new state is returned (a rerun after map growth starts over from
    `run`, which is not touched)."""
    placed = [(w, p) for w in chunk for p in placed_crops(w)]
    jpegs = {(w.frame, p.bb): crop_ops.encode_jpeg(crop_ops.cut(w.image, p.box)) for w, p in placed}

    def commit(txn) -> RunRecord:
        r = copy.deepcopy(run)
        _fence(store, txn, r, owner)
        per_track: dict[int, list[str]] = {}
        for work in chunk:
            if work.detected:
                store.put_pending(txn, r.run_id, work.frame, work.pending)
        for work, p in placed:
            store_tid = r.track_map.get(str(p.track))
            if store_tid is None:
                store_tid = store.next_track_id(txn)
                r.track_map[str(p.track)] = store_tid
            key = crop_key(video.video_id, work.frame, p.bb)
            meta = CropMeta(video.video_id, video.camera, work.frame, p.box.as_list(), round(p.score, 4),
                            store_tid, r.run_id, feature=p.feature is not None, interpolated=p.interpolated)
            store.put_crop(txn, key, jpegs[(work.frame, p.bb)], meta, p.feature)
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
                    settings: IngestSettings | None = None,
                    start_time: str | float | None = None) -> tuple[str, int, int]:
    """Ingest whatever part of the range no completed run covers yet (gaps become runs of their own, so footage
    ingested before is never recomputed). Returns (video_id, from_frame, to_frame)."""
    settings = ingest_settings(settings)
    info = probe(video)
    start, stop = check_range(info, from_frame, to_frame)
    for attempt in range(3):
        try:
            for a, b in _gaps(store, info.video_id, start, stop, settings):
                ingest(video, store, camera=camera, from_frame=a, to_frame=b, settings=settings, progress=progress,
                       start_time=start_time)
            break
        except OverlapError:
            # Another writer finished a run over part of a gap while this one waited for it (ingest waits for live
            # writers): the gaps are different now.
            if attempt == 2:
                raise
    if start_time is not None:  # footage ingested before, with no gap left: its start can still be given now
        record = store.video(info.video_id)
        if record is not None:
            clock.stamp(store, record, *clock.resolve_start(video, start_time))
    return info.video_id, start, stop


def _gaps(store: Store, video_id: str, start: int, stop: int, settings: IngestSettings) -> list[tuple[int, int]]:
    covered = sorted((r.from_frame, r.to_frame) for r in store.runs(video_id)
                     if r.status == "complete" and r.stride == 1 and settings.covers(r.settings))
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
