"""The LMDB store: every crop (JPEG), its metadata and feature, tracks, ingest runs and enrolled identities.

Layout (LMDB named databases, all keys UTF-8):
  videos       video_id -> VideoRecord json           (video_id = sha256 of the file)
  runs         run_id -> RunRecord json               (one ingest of a frame range with fixed settings)
  crops        "{video_id}/{frame:08d}_{bb:02d}" -> JPEG   (bb = the box's index among the frame's detections)
  meta         same key -> CropMeta json
  feats        same key -> float32 bytes
  tracks       "{track_id:08d}" -> TrackRecord json   (track ids are unique in the store)
  pending      "{run_id}/{frame:08d}" -> detections+features of an unfinished run (replayed to resume tracking)
  identities   name -> IdentityRecord json           (with any enrolled face photos: deleted with the record)
  annotations  "{crop key}\\0{kind}" -> bytes         (per-crop caches: attributes, other models' features, faces)
  counters     "track" -> next track id

Every write is one LMDB transaction: a crash leaves the store as it was before that call, never half-written.
LMDB allows one writer and many readers across processes; ingest claims its frame range in the same transaction
that checks for overlaps (reid_core/ingest.py), so concurrent app users and CLI runs never duplicate work.
Opening, map growth, compaction and error translation live in reid_core/store_env.py; docs/store.md has the rules.
Deleting an identity or a run compacts the store afterwards, so the deleted bytes are gone from the files.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lmdb
import numpy as np

from reid_core import names
from reid_core.errors import StoreError
from reid_core.names import validate_name  # also the public name callers import from the store
from reid_core.store_env import SharedEnv, shared_env, translate
from reid_core.types import Box, Crop, FaceSample, Identity, Track

DBS = ("videos", "runs", "crops", "meta", "feats", "tracks", "pending", "identities", "annotations", "counters")
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
    # wall clock of frame 0 (UTC epoch seconds) and where it came from: "cli" (given at ingest), "container" (the
    # file's metadata) or "unknown" (None: times are per video only). Absent in stores made before it existed.
    start: float | None = None
    start_source: str = "unknown"


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
    # who is writing a partial run: {"host", "pid", "start" (process start time), "token" (one ingest call)};
    # emptied when the run completes. heartbeat: time of the owner's last commit (its lease starts there).
    owner: dict = field(default_factory=dict)
    heartbeat: float = 0.0


@dataclass
class CropMeta:
    video_id: str
    camera: str
    frame: int
    box: list[float]
    score: float
    track_id: int
    run_id: str
    # False: the ingest sampled this crop out (reid_core/sampling.py) and no feature is stored for it
    feature: bool = True
    interpolated: bool = False  # the box was not detected but interpolated between two detections of its track


@dataclass
class TrackRecord:
    track_id: int
    video_id: str
    camera: str
    run_id: str
    keys: list[str] = field(default_factory=list)


def _dumps(obj) -> bytes:
    return json.dumps(asdict(obj) if hasattr(obj, "__dataclass_fields__") else obj, separators=(",", ":")).encode()


class Store:
    """One store folder. Any number of Store objects of one folder share one LMDB environment per process
    (LMDB forbids opening the same env twice); a compaction reopens it for all of them."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._shared: SharedEnv = shared_env(self.path, DBS)
        except OSError as e:  # a read-only or unreadable folder, its lock file
            raise translate(e, self.path) from None

    @property
    def env(self) -> lmdb.Environment:
        return self._shared.env

    @property
    def db(self) -> dict:
        return self._shared.dbs

    # ---- transactions -------------------------------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[lmdb.Transaction]:
        """One atomic write: everything inside commits together or not at all. LMDB failures come out as one
        StoreError line (disk full, store damaged, ...). Prefer transact(), which also survives a full map."""
        with self._shared.transaction(write=True) as txn:
            yield txn

    def transact(self, fn):
        """fn(txn) in one write transaction, run again on a fresh one if the map had to grow: fn must only change
        the store through txn (or copies of its arguments), so that a rerun starts from the same state."""
        return self._shared.write_retrying(fn)

    @contextmanager
    def read(self) -> Iterator[lmdb.Transaction]:
        with self._shared.transaction(write=False) as txn:
            yield txn

    def _get_json(self, txn, db: str, key: bytes):
        raw = txn.get(key, db=self.db[db])
        return None if raw is None else json.loads(raw)

    def get_run(self, txn, run_id: str) -> RunRecord | None:
        raw = self._get_json(txn, "runs", run_id.encode())
        return RunRecord(**raw) if raw else None

    def runs_in(self, txn, video_id: str | None = None) -> list[RunRecord]:
        runs = [RunRecord(**json.loads(v)) for _, v in self._scan(txn, "runs")]
        return [r for r in runs if video_id is None or r.video_id == video_id]

    def get_video(self, txn, video_id: str) -> VideoRecord | None:
        raw = self._get_json(txn, "videos", video_id.encode())
        return VideoRecord(**raw) if raw else None

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
            return self.runs_in(txn, video_id)

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

    def put_crop(self, txn, key: str, jpeg: bytes, meta: CropMeta, feature: np.ndarray | None) -> None:
        """A crop with its feature, or without one (feature None: meta.feature must say so)."""
        if (feature is None) == meta.feature:
            raise ValueError(f"crop {key}: meta.feature is {meta.feature} but the feature is "
                             f"{'missing' if feature is None else 'given'}")
        k = key.encode()
        txn.put(k, jpeg, db=self.db["crops"])
        txn.put(k, _dumps(meta), db=self.db["meta"])
        if feature is not None:
            txn.put(k, np.ascontiguousarray(feature, np.float32).tobytes(), db=self.db["feats"])

    def append_to_track(self, txn, track_id: int, video_id: str, camera: str, run_id: str, keys: list[str]) -> None:
        raw = self._get_json(txn, "tracks", track_key(track_id))
        rec = TrackRecord(**raw) if raw else TrackRecord(track_id, video_id, camera, run_id)
        rec.keys.extend(keys)
        txn.put(track_key(track_id), _dumps(rec), db=self.db["tracks"])

    def delete_run(self, run_id: str, compact: bool = True) -> int:
        """Remove a run and everything it stored (crops, features, tracks, replay data); identities lose those
        crops. With compact, the store is rebuilt afterwards so the bytes are gone from the files too."""
        def remove(txn):
            if self._get_json(txn, "runs", run_id.encode()) is None:
                raise StoreError(f"no ingest run {run_id!r}")
            return self.delete_run_in(txn, run_id)

        n = self.transact(remove)
        if compact:
            self.compact()
        return n

    def delete_run_in(self, txn, run_id: str) -> int:
        """delete_run inside the caller's transaction (no compaction). Returns the crops removed."""
        run = self.get_run(txn, run_id)
        if run is None:
            return 0
        # the run's crops by their metadata, not only by track_map: a partial run's last chunk may hold crops of
        # tracks whose records are written in the same chunk, and a crash leaves neither or both
        prefix = f"{run.video_id}/".encode()
        doomed = {k.decode() for k, v in self._scan(txn, "meta", prefix) if json.loads(v)["run_id"] == run_id}
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
                            meta["track_id"], interpolated=meta.get("interpolated", False))
                if jpeg:
                    raw_jpeg = txn.get(k, db=self.db["crops"])
                    assert raw_jpeg is not None  # put_crop writes a crop's jpeg with its meta, in one transaction
                    crop.jpeg = bytes(raw_jpeg)
                if feature:  # None for a crop the ingest sampled out (meta["feature"] False)
                    raw_feat = txn.get(k, db=self.db["feats"])
                    crop.feature = None if raw_feat is None else np.frombuffer(raw_feat, np.float32).copy()
                out.append(crop)
        return out

    def features(self, keys: Iterable[str]) -> np.ndarray:
        """(N, D) float32, in the order of `keys`; every one must have a feature (see features_where)."""
        keys = list(keys)
        feats, present = self.features_where(keys)
        if not present.all():
            raise StoreError(f"no feature for crop {keys[int(np.argmin(present))]!r}")
        return feats

    def features_where(self, keys: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """(N, D) float32 in the order of `keys`, zero rows for crops stored without a feature, and the (N,) mask of
        the rows that have one. Flows read tracks through reid_core/sampling.track_features, not this."""
        keys = list(keys)
        with self.read() as txn:
            raw = [txn.get(key.encode(), db=self.db["feats"]) for key in keys]
            dim = next((len(r) // 4 for r in raw if r is not None), 0)
            out = np.zeros((len(keys), dim), np.float32)
            for i, r in enumerate(raw):
                if r is not None:
                    out[i] = np.frombuffer(r, np.float32)
        return out, np.array([r is not None for r in raw], bool)

    def track_keys(self, track_id: int) -> list[str]:
        """Every crop key of a stored track, in time order (whatever range a caller cut it to)."""
        with self.read() as txn:
            rec = self._get_json(txn, "tracks", track_key(track_id))
        return list(rec["keys"]) if rec else []

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
        def put(txn):
            for key, value in items.items():
                txn.put(f"{key}\0{kind}".encode(), value, db=self.db["annotations"])

        self.transact(put)

    # ---- identities ---------------------------------------------------------------------------------------------
    def identities(self) -> list[Identity]:
        with self.read() as txn:
            return [Identity(**json.loads(v)) for _, v in self._scan(txn, "identities")]

    def _identity_names(self, txn) -> list[str]:
        return [k.decode() for k, _ in self._scan(txn, "identities")]

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
            if raw is None:
                names.validate_new_name(name, self._identity_names(txn))
            ident = Identity(**raw) if raw else Identity(name, [], time.time())
            ident.keys.extend(k for k in keys if k not in set(ident.keys))
            txn.put(name.encode(), _dumps(ident), db=self.db["identities"])
        return ident

    def add_identity_faces(self, name: str, faces: list[FaceSample]) -> Identity:
        """Add enrolled face photos to identity `name`, making it (face only) if it does not exist."""
        name = validate_name(name)
        with self.write() as txn:
            raw = self._get_json(txn, "identities", name.encode())
            if raw is None:
                names.validate_new_name(name, self._identity_names(txn))
            ident = Identity(**raw) if raw else Identity(name, [], time.time())
            ident.faces.extend(faces)
            txn.put(name.encode(), _dumps(ident), db=self.db["identities"])
        return ident

    def remove_from_identity(self, name: str, keys: list[str]) -> Identity:
        """Take crops out of an identity (a wrong enrollment); the crops themselves stay in the store."""
        name = validate_name(name)
        with self.write() as txn:
            raw = self._get_json(txn, "identities", name.encode())
            if raw is None:
                raise StoreError(f"no identity named {name!r}")
            gone = set(keys)
            ident = Identity(**raw)
            ident.keys = [k for k in ident.keys if k not in gone]
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
            names.validate_new_name(new, [n for n in self._identity_names(txn) if n != old])
            raw["name"] = new
            txn.delete(old.encode(), db=self.db["identities"])
            txn.put(new.encode(), json.dumps(raw).encode(), db=self.db["identities"])
        return Identity(**raw)

    def merge_identities(self, sources: list[str], target: str) -> Identity:
        target = validate_name(target)
        with self.write() as txn:
            raw = self._get_json(txn, "identities", target.encode())
            if raw is None:  # a new target may resemble a source it replaces, not another identity
                gone = {validate_name(src) for src in sources}
                names.validate_new_name(target, [n for n in self._identity_names(txn) if n not in gone])
            ident = Identity(**raw) if raw else Identity(target, [], time.time())
            if all(validate_name(src) == target for src in sources):
                raise StoreError(f"cannot merge {target!r} into itself: pick another identity as the target")
            for src in sources:
                src = validate_name(src)
                if src == target:
                    continue
                other = self._get_json(txn, "identities", src.encode())
                if other is None:
                    raise StoreError(f"no identity named {src!r}")
                ident.keys.extend(k for k in other["keys"] if k not in set(ident.keys))
                ident.faces.extend(Identity(**other).faces)
                txn.delete(src.encode(), db=self.db["identities"])
            txn.put(target.encode(), _dumps(ident), db=self.db["identities"])
        return ident

    def delete_identity(self, name: str, compact: bool = True) -> int:
        """Delete the identity and the crops/features/annotations that enrolled it (not only the name), except
        crops another identity also holds (membership is counted: two people enrolled from one track keep each
        other's crops). Other crops of the same tracks stay: they are footage like any passer-by's, and a track
        is no proof of identity. With compact the store is rebuilt afterwards, so the deleted JPEGs, features and
        the name are gone from the files, not only unlinked. Returns the crops removed."""
        name = validate_name(name)

        def remove(txn):
            raw = self._get_json(txn, "identities", name.encode())
            if raw is None:
                raise StoreError(f"no identity named {name!r}")
            txn.delete(name.encode(), db=self.db["identities"])
            held = {k for _, v in self._scan(txn, "identities") for k in json.loads(v)["keys"]}
            doomed = [k for k in raw["keys"] if k not in held]
            self._delete_crops(txn, doomed)
            return len(doomed)

        n = self.transact(remove)
        if compact:
            self.compact()
        return n

    # ---- erasure and integrity ----------------------------------------------------------------------------------
    def compact(self) -> CompactResult:
        """Rebuild the store into a fresh file (under the cross-process writer lock) and swap it in: reclaims
        space and leaves no byte of deleted records in the store folder (store_env.SharedEnv.compact)."""
        t0 = time.time()
        before, after = self._shared.compact()
        return CompactResult(before, after, time.time() - t0)

    def check(self, isolated: bool = True) -> CheckReport:
        """Decode every record and check the references between them (one read transaction). Isolated, the walk
        runs in a forked child: LMDB keeps no page checksums, and a page overwritten with garbage can send it
        past the end of the file (SIGBUS), which then ends the child, not this process."""
        return check_isolated(self.path) if isolated else check_store(self)

    # ---- summary ------------------------------------------------------------------------------------------------
    def stats(self) -> dict:
        with self.read() as txn:
            return {name: txn.stat(self.db[name])["entries"] for name in ("videos", "runs", "crops", "tracks",
                                                                           "identities")}

    def dump(self) -> dict[str, dict[bytes, bytes]]:
        """Every key and value of every database (for tests comparing two stores)."""
        with self.read() as txn:
            return {name: {bytes(k): bytes(v) for k, v in self._scan(txn, name)} for name in DBS}


@dataclass
class CompactResult:
    bytes_before: int
    bytes_after: int
    seconds: float


@dataclass
class CheckReport:
    counts: dict[str, int]
    problems: list[str]
    bytes: int

    @property
    def ok(self) -> bool:
        return not self.problems


def check_store(store: Store, max_listed: int = 50) -> CheckReport:
    """Every database decodes, and crops/meta/features/tracks/runs/identities/annotations refer to each other
    consistently. A damaged page shows as a problem (LMDB's error), not as a crash."""
    problems: list[str] = []
    counts: dict[str, int] = {}

    def bad(msg: str) -> None:
        problems.append(msg)

    try:
        with store.read() as txn:
            recs: dict[str, dict] = {}
            raw: dict[str, dict[bytes, bytes]] = {}
            for name in DBS:
                try:
                    raw[name] = {bytes(k): bytes(v) for k, v in store._scan(txn, name)}
                except lmdb.Error as e:
                    bad(f"{name}: cannot be read ({e})")
                    raw[name] = {}
                counts[name] = len(raw[name])
            for name, cls in (("videos", VideoRecord), ("runs", RunRecord), ("meta", CropMeta),
                              ("tracks", TrackRecord), ("identities", Identity)):
                recs[name] = {}
                for k, v in raw[name].items():
                    try:
                        recs[name][k.decode()] = asdict(cls(**json.loads(v)))
                    except (ValueError, TypeError) as e:
                        bad(f"{name} {k[:60]!r}: does not decode ({type(e).__name__})")
            metas, runs, tracks = recs["meta"], recs["runs"], recs["tracks"]
            crops = {k.decode("utf-8", "replace"): v for k, v in raw["crops"].items()}
            feats = {k.decode("utf-8", "replace"): v for k, v in raw["feats"].items()}
            for key in crops.keys() - metas.keys():
                bad(f"crop {key}: JPEG without metadata")
            for key in metas.keys() - crops.keys():
                bad(f"crop {key}: metadata without JPEG")
            featured = {k for k, m in metas.items() if m.get("feature", True)}
            for key in featured ^ feats.keys():
                bad(f"crop {key}: feature and metadata do not match (one is missing)")
            sizes = {len(v) for v in feats.values()}
            if len(sizes) > 1 or any(n % 4 for n in sizes):
                bad(f"features have mixed or odd sizes {sorted(sizes)[:5]} bytes")
            for key, jpeg in crops.items():
                if not (jpeg.startswith(b"\xff\xd8") and jpeg.rstrip(b"\0").endswith(b"\xff\xd9")):
                    bad(f"crop {key}: not a complete JPEG")
            for key, f in feats.items():
                if len(f) % 4 == 0 and not np.isfinite(np.frombuffer(f, np.float32)).all():
                    bad(f"crop {key}: feature has NaN/inf")
            for key, m in metas.items():
                if m["run_id"] not in runs:
                    bad(f"crop {key}: its run {m['run_id']} does not exist")
                t = tracks.get(track_key(m["track_id"]).decode())
                if t is None:
                    if runs.get(m["run_id"], {}).get("status") == "complete":
                        bad(f"crop {key}: its track {m['track_id']} does not exist")
                elif key not in set(t["keys"]):
                    bad(f"crop {key}: track {m['track_id']} does not list it")
            for t in tracks.values():
                for key in t["keys"]:
                    if key not in metas:
                        bad(f"track {t['track_id']}: lists missing crop {key}")
                if t["run_id"] not in runs:
                    bad(f"track {t['track_id']}: its run {t['run_id']} does not exist")
            for rid, r in runs.items():
                if r["video_id"] not in recs["videos"]:
                    bad(f"run {rid}: its video {r['video_id'][:12]} does not exist")
                if r["status"] not in ("partial", "complete"):
                    bad(f"run {rid}: unknown status {r['status']!r}")
            for name, ident in recs["identities"].items():
                missing = [k for k in ident["keys"] if k not in metas]
                if missing:
                    bad(f"identity {name!r}: {len(missing)} enrolled crops are missing (e.g. {missing[0]})")
            for k in raw["annotations"]:
                key = k.split(b"\0", 1)[0].decode("utf-8", "replace")
                if key not in metas:
                    bad(f"annotation of missing crop {key}")
            for k in raw["pending"]:
                rid = k.decode("utf-8", "replace").split("/", 1)[0]
                if runs.get(rid, {}).get("status") != "partial":
                    bad(f"replay data of run {rid}, which is not a partial run")
    except StoreError as e:
        bad(str(e))
    size = sum(f.stat().st_size for f in store.path.glob("*.mdb"))
    if len(problems) > max_listed:
        problems = problems[:max_listed] + [f"... and {len(problems) - max_listed} more"]
    return CheckReport(counts, problems, size)


def check_isolated(path: Path) -> CheckReport:
    """check_store in a child process (a fresh interpreter: LMDB refuses a second open of one env per process,
    and a forked child inherits that registry); a child killed by a signal means damaged pages."""
    import signal
    import subprocess
    import sys

    code = ("import json, sys, dataclasses\n"
            "from reid_core.store import Store, check_store\n"
            "from reid_core.errors import ReidError\n"
            "try:\n"
            "    r = dataclasses.asdict(check_store(Store(sys.argv[1])))\n"
            "except ReidError as e:\n"
            "    r = {'counts': {}, 'problems': [str(e)], 'bytes': 0}\n"
            "print(json.dumps(r))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        return CheckReport({}, [f"store damaged: reading {path} crashed the checker ({sig}): pages of data.mdb "
                                f"are overwritten or garbled; restore the folder from a backup"], 0)
    try:
        return CheckReport(**json.loads(proc.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError, TypeError):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return CheckReport({}, [f"the store checker failed: {tail}"], 0)
