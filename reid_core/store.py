"""The LMDB store: every crop (JPEG), its metadata and feature, tracks, ingest runs and enrolled identities.

Layout (LMDB named databases, all keys UTF-8):
  videos       video_id -> VideoRecord json           (video_id = sha256 of the file)
  runs         run_id -> RunRecord json               (one ingest of a frame range with fixed settings)
  crops        "{video_id}/{frame:08d}_{bb:02d}" -> JPEG   (bb = the box's index among the frame's detections)
  meta         same key -> CropMeta json
  feats        same key -> float32 bytes
  tracks       "{track_id:08d}" -> TrackRecord json   (track ids are unique in the store)
  pending      "{run_id}/{frame:08d}" -> detections+features of an unfinished run (replayed to resume tracking)
  identities   name -> IdentityRecord json
  annotations  "{crop key}\\0{kind}" -> bytes         (per-crop caches: attributes, other models' features)
  counters     "track" -> next track id

Every write is one LMDB transaction: a crash leaves the store as it was before that call, never half-written.
LMDB allows one writer and many readers across processes, so concurrent app users and CLI runs are safe.
"""
from __future__ import annotations

import json
import re
import threading
import time
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lmdb
import numpy as np

from reid_core.errors import StoreError
from reid_core.types import Box, Crop, Identity, Track

DBS = ("videos", "runs", "crops", "meta", "feats", "tracks", "pending", "identities", "annotations", "counters")
MAP_SIZE = 1 << 40  # address space only; LMDB files grow as data is written
NAME_MAX = 64


def crop_key(video_id: str, frame: int, bb: int) -> str:
    return f"{video_id}/{frame:08d}_{bb:02d}"


def track_key(track_id: int) -> bytes:
    return f"{track_id:08d}".encode()


@dataclass
class VideoRecord:
    video_id: str
    path: str
    camera: str
    fps: float
    frame_count: int
    width: int
    height: int
    added: float = 0.0


@dataclass
class RunRecord:
    run_id: str
    video_id: str
    from_frame: int
    to_frame: int
    stride: int
    settings: dict
    status: str = "partial"  # "partial" until the last frame is committed, then "complete"
    next_frame: int = 0  # first frame not yet committed
    track_map: dict[str, int] = field(default_factory=dict)  # tracker's track number -> store track id
    crops: int = 0
    started: float = 0.0
    finished: float = 0.0


@dataclass
class CropMeta:
    video_id: str
    camera: str
    frame: int
    box: list[float]
    score: float
    track_id: int
    run_id: str


@dataclass
class TrackRecord:
    track_id: int
    video_id: str
    camera: str
    run_id: str
    keys: list[str] = field(default_factory=list)


def _dumps(obj) -> bytes:
    return json.dumps(asdict(obj) if hasattr(obj, "__dataclass_fields__") else obj, separators=(",", ":")).encode()


def validate_name(name: str) -> str:
    """An identity name people can type and files can carry: letters, digits, space, . _ - ' ; no path tricks."""
    if not isinstance(name, str):
        raise StoreError("identity name must be text")
    cleaned = unicodedata.normalize("NFC", name).strip()
    if not cleaned:
        raise StoreError("identity name is empty")
    if len(cleaned) > NAME_MAX:
        raise StoreError(f"identity name is longer than {NAME_MAX} characters")
    if any(unicodedata.category(c).startswith("C") for c in cleaned):
        raise StoreError("identity name contains control characters")
    if "/" in cleaned or "\\" in cleaned or ".." in cleaned or cleaned.startswith("."):
        raise StoreError(f"identity name {name!r} contains a path separator or '..'; use letters, digits, "
                         "spaces and . _ - '")
    if not re.fullmatch(r"[\w .'\-]+", cleaned):
        raise StoreError(f"identity name {name!r} has characters other than letters, digits, spaces and . _ - '")
    return cleaned


class Store:
    """One store folder. Open it once per process and share it (LMDB forbids opening the same env twice)."""

    _open_envs: dict[str, lmdb.Environment] = {}
    _open_lock = threading.Lock()

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        key = str(self.path.resolve())
        with Store._open_lock:
            env = Store._open_envs.get(key)
            if env is None:
                env = lmdb.open(key, map_size=MAP_SIZE, max_dbs=len(DBS) + 2, subdir=True, max_readers=256)
                Store._open_envs[key] = env
        self.env = env
        self.db = {name: env.open_db(name.encode()) for name in DBS}

    # ---- transactions -------------------------------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[lmdb.Transaction]:
        """One atomic write: everything inside commits together or not at all."""
        with self.env.begin(write=True) as txn:
            yield txn

    @contextmanager
    def read(self) -> Iterator[lmdb.Transaction]:
        with self.env.begin() as txn:
            yield txn

    def _get_json(self, txn, db: str, key: bytes):
        raw = txn.get(key, db=self.db[db])
        return None if raw is None else json.loads(raw)

    def _scan(self, txn, db: str, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        cur = txn.cursor(db=self.db[db])
        if not cur.set_range(prefix):
            return
        for k, v in cur:
            if not k.startswith(prefix):
                return
            yield k, v

    # ---- videos and runs ----------------------------------------------------------------------------------------
    def videos(self) -> list[VideoRecord]:
        with self.read() as txn:
            return [VideoRecord(**json.loads(v)) for _, v in self._scan(txn, "videos")]

    def video(self, video_id: str) -> VideoRecord | None:
        with self.read() as txn:
            raw = self._get_json(txn, "videos", video_id.encode())
        return VideoRecord(**raw) if raw else None

    def runs(self, video_id: str | None = None) -> list[RunRecord]:
        with self.read() as txn:
            runs = [RunRecord(**json.loads(v)) for _, v in self._scan(txn, "runs")]
        return [r for r in runs if video_id is None or r.video_id == video_id]

    def run(self, run_id: str) -> RunRecord | None:
        with self.read() as txn:
            raw = self._get_json(txn, "runs", run_id.encode())
        return RunRecord(**raw) if raw else None

    def put_video(self, txn, video: VideoRecord) -> None:
        txn.put(video.video_id.encode(), _dumps(video), db=self.db["videos"])

    def put_run(self, txn, run: RunRecord) -> None:
        txn.put(run.run_id.encode(), _dumps(run), db=self.db["runs"])

    def next_track_id(self, txn) -> int:
        raw = txn.get(b"track", db=self.db["counters"])
        value = int(raw) if raw else 1
        txn.put(b"track", str(value + 1).encode(), db=self.db["counters"])
        return value

    def put_pending(self, txn, run_id: str, frame: int, payload: bytes) -> None:
        txn.put(f"{run_id}/{frame:08d}".encode(), payload, db=self.db["pending"])

    def pending(self, run_id: str) -> Iterator[tuple[int, bytes]]:
        with self.read() as txn:
            for k, v in self._scan(txn, "pending", f"{run_id}/".encode()):
                yield int(k.decode().rsplit("/", 1)[1]), bytes(v)

    def clear_pending(self, txn, run_id: str) -> None:
        keys = [k for k, _ in self._scan(txn, "pending", f"{run_id}/".encode())]
        for k in keys:
            txn.delete(k, db=self.db["pending"])

    def put_crop(self, txn, key: str, jpeg: bytes, meta: CropMeta, feature: np.ndarray) -> None:
        k = key.encode()
        txn.put(k, jpeg, db=self.db["crops"])
        txn.put(k, _dumps(meta), db=self.db["meta"])
        txn.put(k, np.ascontiguousarray(feature, np.float32).tobytes(), db=self.db["feats"])

    def append_to_track(self, txn, track_id: int, video_id: str, camera: str, run_id: str, keys: list[str]) -> None:
        raw = self._get_json(txn, "tracks", track_key(track_id))
        rec = TrackRecord(**raw) if raw else TrackRecord(track_id, video_id, camera, run_id)
        rec.keys.extend(keys)
        txn.put(track_key(track_id), _dumps(rec), db=self.db["tracks"])

    def delete_run(self, run_id: str) -> int:
        """Remove a run and everything it stored (crops, features, tracks); identities lose those crops."""
        with self.write() as txn:
            raw = self._get_json(txn, "runs", run_id.encode())
            if raw is None:
                raise StoreError(f"no ingest run {run_id!r}")
            run = RunRecord(**raw)
            doomed = set()
            for tid in run.track_map.values():
                rec = self._get_json(txn, "tracks", track_key(tid))
                if rec:
                    doomed.update(rec["keys"])
                    txn.delete(track_key(tid), db=self.db["tracks"])
            self._delete_crops(txn, doomed, tracks_too=False)
            self.clear_pending(txn, run_id)
            txn.delete(run_id.encode(), db=self.db["runs"])
            if not any(json.loads(v)["video_id"] == run.video_id for _, v in self._scan(txn, "runs")):
                txn.delete(run.video_id.encode(), db=self.db["videos"])
        return len(doomed)

    def _delete_crops(self, txn, keys: Iterable[str], tracks_too: bool = True) -> None:
        keys = set(keys)
        by_track: dict[int, set[str]] = {}
        for key in keys:
            k = key.encode()
            meta = self._get_json(txn, "meta", k)
            if meta is not None:
                by_track.setdefault(meta["track_id"], set()).add(key)
            for db in ("crops", "meta", "feats"):
                txn.delete(k, db=self.db[db])
            for ann_key, _ in list(self._scan(txn, "annotations", k + b"\0")):
                txn.delete(ann_key, db=self.db["annotations"])
        if tracks_too:
            for tid, gone in by_track.items():
                rec = self._get_json(txn, "tracks", track_key(tid))
                if rec is None:
                    continue
                rec["keys"] = [k for k in rec["keys"] if k not in gone]
                if rec["keys"]:
                    txn.put(track_key(tid), json.dumps(rec).encode(), db=self.db["tracks"])
                else:
                    txn.delete(track_key(tid), db=self.db["tracks"])
        for _, v in list(self._scan(txn, "identities")):
            ident = json.loads(v)
            kept = [k for k in ident["keys"] if k not in keys]
            if len(kept) != len(ident["keys"]):
                ident["keys"] = kept
                txn.put(ident["name"].encode(), json.dumps(ident).encode(), db=self.db["identities"])

    # ---- tracks and crops ---------------------------------------------------------------------------------------
    def _complete_runs(self, txn) -> set[str]:
        return {json.loads(v)["run_id"] for _, v in self._scan(txn, "runs") if json.loads(v)["status"] == "complete"}

    def tracks(self, video_id: str | None = None, from_frame: int | None = None,
               to_frame: int | None = None) -> list[Track]:
        """Tracks of completed ingests (optionally of one video, cut to a frame range), with boxes and frames."""
        out = []
        with self.read() as txn:
            complete = self._complete_runs(txn)
            for _, v in self._scan(txn, "tracks"):
                rec = json.loads(v)
                if rec["run_id"] not in complete or (video_id and rec["video_id"] != video_id):
                    continue
                track = Track(rec["track_id"], rec["video_id"], rec["camera"])
                for key in rec["keys"]:
                    meta = self._get_json(txn, "meta", key.encode())
                    if meta is None:
                        continue
                    if from_frame is not None and meta["frame"] < from_frame:
                        continue
                    if to_frame is not None and meta["frame"] > to_frame:
                        continue
                    track.keys.append(key)
                    track.frames.append(meta["frame"])
                    track.boxes.append(Box(*meta["box"]))
                    track.scores.append(meta["score"])
                if track.keys:
                    out.append(track)
        return out

    def track(self, track_id: int) -> Track | None:
        with self.read() as txn:
            rec = self._get_json(txn, "tracks", track_key(track_id))
        if rec is None:
            return None
        return next((t for t in self.tracks(rec["video_id"]) if t.track_id == track_id), None)

    def get_crops(self, keys: Iterable[str], jpeg: bool = True, feature: bool = False) -> list[Crop]:
        out = []
        with self.read() as txn:
            for key in keys:
                k = key.encode()
                meta = self._get_json(txn, "meta", k)
                if meta is None:
                    raise StoreError(f"no crop {key!r} in the store")
                crop = Crop(key, meta["video_id"], meta["camera"], meta["frame"], Box(*meta["box"]), meta["score"],
                            meta["track_id"])
                if jpeg:
                    crop.jpeg = bytes(txn.get(k, db=self.db["crops"]))
                if feature:
                    crop.feature = np.frombuffer(txn.get(k, db=self.db["feats"]), np.float32).copy()
                out.append(crop)
        return out

    def features(self, keys: Iterable[str]) -> np.ndarray:
        """(N, D) float32, in the order of `keys`."""
        with self.read() as txn:
            rows = []
            for key in keys:
                raw = txn.get(key.encode(), db=self.db["feats"])
                if raw is None:
                    raise StoreError(f"no feature for crop {key!r}")
                rows.append(np.frombuffer(raw, np.float32))
        return np.stack(rows) if rows else np.zeros((0, 0), np.float32)

    def all_crop_keys(self) -> list[str]:
        with self.read() as txn:
            complete = self._complete_runs(txn)
            return [k.decode() for k, v in self._scan(txn, "meta") if json.loads(v)["run_id"] in complete]

    # ---- per-crop annotation caches -----------------------------------------------------------------------------
    def get_annotations(self, kind: str, keys: Iterable[str]) -> dict[str, bytes]:
        out = {}
        with self.read() as txn:
            for key in keys:
                raw = txn.get(f"{key}\0{kind}".encode(), db=self.db["annotations"])
                if raw is not None:
                    out[key] = bytes(raw)
        return out

    def put_annotations(self, kind: str, items: dict[str, bytes]) -> None:
        with self.write() as txn:
            for key, value in items.items():
                txn.put(f"{key}\0{kind}".encode(), value, db=self.db["annotations"])

    # ---- identities ---------------------------------------------------------------------------------------------
    def identities(self) -> list[Identity]:
        with self.read() as txn:
            return [Identity(**json.loads(v)) for _, v in self._scan(txn, "identities")]

    def identity(self, name: str) -> Identity | None:
        with self.read() as txn:
            raw = self._get_json(txn, "identities", validate_name(name).encode())
        return Identity(**raw) if raw else None

    def add_to_identity(self, name: str, keys: list[str]) -> Identity:
        name = validate_name(name)
        with self.write() as txn:
            for key in keys:
                if txn.get(key.encode(), db=self.db["meta"]) is None:
                    raise StoreError(f"no crop {key!r} in the store")
            raw = self._get_json(txn, "identities", name.encode())
            ident = Identity(**raw) if raw else Identity(name, [], time.time())
            ident.keys.extend(k for k in keys if k not in set(ident.keys))
            txn.put(name.encode(), _dumps(ident), db=self.db["identities"])
        return ident

    def rename_identity(self, old: str, new: str) -> Identity:
        old, new = validate_name(old), validate_name(new)
        with self.write() as txn:
            raw = self._get_json(txn, "identities", old.encode())
            if raw is None:
                raise StoreError(f"no identity named {old!r}")
            if old != new and txn.get(new.encode(), db=self.db["identities"]) is not None:
                raise StoreError(f"an identity named {new!r} already exists; merge instead")
            raw["name"] = new
            txn.delete(old.encode(), db=self.db["identities"])
            txn.put(new.encode(), json.dumps(raw).encode(), db=self.db["identities"])
        return Identity(**raw)

    def merge_identities(self, sources: list[str], target: str) -> Identity:
        target = validate_name(target)
        with self.write() as txn:
            raw = self._get_json(txn, "identities", target.encode())
            ident = Identity(**raw) if raw else Identity(target, [], time.time())
            for src in sources:
                src = validate_name(src)
                if src == target:
                    continue
                other = self._get_json(txn, "identities", src.encode())
                if other is None:
                    raise StoreError(f"no identity named {src!r}")
                ident.keys.extend(k for k in other["keys"] if k not in set(ident.keys))
                txn.delete(src.encode(), db=self.db["identities"])
            txn.put(target.encode(), _dumps(ident), db=self.db["identities"])
        return ident

    def delete_identity(self, name: str) -> int:
        """Delete the identity and the crops/features that enrolled it (not only the name). Returns crops removed."""
        name = validate_name(name)
        with self.write() as txn:
            raw = self._get_json(txn, "identities", name.encode())
            if raw is None:
                raise StoreError(f"no identity named {name!r}")
            txn.delete(name.encode(), db=self.db["identities"])
            self._delete_crops(txn, raw["keys"])
        return len(raw["keys"])

    # ---- summary ------------------------------------------------------------------------------------------------
    def stats(self) -> dict:
        with self.read() as txn:
            return {name: txn.stat(self.db[name])["entries"] for name in ("videos", "runs", "crops", "tracks",
                                                                           "identities")}

    def dump(self) -> dict[str, dict[bytes, bytes]]:
        """Every key and value of every database (for tests comparing two stores)."""
        with self.read() as txn:
            return {name: {bytes(k): bytes(v) for k, v in self._scan(txn, name)} for name in DBS}
