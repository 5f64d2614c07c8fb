"""Decisions: enroll a person, verify a claim, identify every track (open set), search by image.

One similarity scale everywhere: the cosine between L2-normalised mean features (a track's crops against an
identity's enrolled tracks; the best counts). Scores are in -1..1, in practice 0..1; the app shows them as
percentages. Tracks cut by an ingest-run boundary are joined again before matching (`video_tracks`).
Measured calibration and open-set numbers: docs/identify.md.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reid_core.calibration import calibration_for
from reid_core.crops import decode_image, to_model_input
from reid_core.embedding import load_embedder
from reid_core.errors import InputError, OverlapError, StoreError
from reid_core.ingest import DEFAULT_SETTINGS, Progress, check_store_embedder, ingest
from reid_core.segments import SegmentConfig, split_track
from reid_core.store import Store, VideoRecord
from reid_core.types import Box, Identity, Match, Track
from reid_core.video import check_range, probe

# Every cosine threshold belongs to the embedder it was measured for (reid_core/calibration.py). The decision
# threshold is calibrated by bench/calibrate.py on PETS09-S2L1 (docs/identify.md); the CLI and the app read it here.
CALIBRATION = calibration_for(DEFAULT_SETTINGS.embedder)
DEFAULT_THRESHOLD = CALIBRATION.threshold
SEGMENTS = SegmentConfig(change_similarity=CALIBRATION.change_similarity)
MIN_TRACK_CROPS = 3  # shorter tracks are mostly detector flicker; they still get scored but never chosen first
# Joining a person's track across the boundary of two adjacent ingest runs (each run starts a fresh tracker):
STITCH_GAP = 2  # frames a track may end before its run ends / start after the next run starts
STITCH_IOU = 0.3  # last box of one part vs first box of the next
STITCH_COSINE = CALIBRATION.appearance_gate  # and their mean appearance (the tracker's own appearance gate)


def _l2(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def aggregate(features: np.ndarray, boxes: list[Box], scores: list[float], method: str = "mean") -> np.ndarray:
    """One feature for a set of crops: plain mean, or weighted by detector score x box height (small, uncertain
    boxes count less)."""
    if method == "mean":
        return _l2(features.mean(axis=0))
    if method == "quality":
        w = np.array([s * min(1.0, b.h / 128.0) for s, b in zip(scores, boxes)], np.float32)
        return _l2((features * w[:, None]).sum(axis=0))
    raise InputError(f"unknown aggregation {method!r}: use 'mean' or 'quality'")


def track_feature(store: Store, track: Track, method: str = "mean") -> np.ndarray:
    return aggregate(store.features(track.keys), track.boxes, track.scores, method)


@dataclass
class Gallery:
    """Each identity as the centroids of the tracks it was enrolled from (one person seen in different places
    and light keeps several appearances instead of one blurred average)."""

    names: list[str]
    centroids: list[np.ndarray]  # per identity: (n_tracks, D)

    @classmethod
    def load(cls, store: Store, method: str = "mean") -> Gallery:
        names, cents = [], []
        for ident in store.identities():
            if not ident.keys:
                continue
            rows = [aggregate(f, seg.boxes, seg.scores, method) for seg, f in identity_segments(store, ident)]
            names.append(ident.name)
            cents.append(np.stack(rows))
        return cls(names, cents)

    def scores(self, feature: np.ndarray) -> dict[str, float]:
        return {n: float((c @ feature).max()) for n, c in zip(self.names, self.centroids)}

    def match(self, feature: np.ndarray, threshold: float) -> Match:
        scores = self.scores(feature)
        if not scores:
            return Match(None, None, 0.0, threshold)
        best = max(scores, key=scores.get)
        return Match(best if scores[best] >= threshold else None, best, scores[best], threshold)


def identity_segments(store: Store, ident: Identity) -> list[tuple[Track, np.ndarray]]:
    """An identity's crops as appearance-consistent segments with their features (grouped by track, each group
    cut where its appearance changes), so one stray stretch never blurs the rest."""
    crops = store.get_crops(ident.keys, jpeg=False, feature=True)
    groups: dict[int, Track] = {}
    feats: dict[int, list[np.ndarray]] = {}
    for c in sorted(crops, key=lambda c: (c.track_id, c.frame)):
        t = groups.setdefault(c.track_id, Track(c.track_id, c.video_id, c.camera))
        t.keys.append(c.key)
        t.frames.append(c.frame)
        t.boxes.append(c.box)
        t.scores.append(c.score)
        feats.setdefault(c.track_id, []).append(c.feature)
    out = []
    for tid, t in groups.items():
        f = np.stack(feats[tid])
        row = {k: i for i, k in enumerate(t.keys)}
        for seg in split_track(t, f, SEGMENTS):
            out.append((seg, f[[row[k] for k in seg.keys]]))
    return out


# ---- tracks of a video, joined across ingest runs ------------------------------------------------------------------
def video_tracks(store: Store, video_id: str, from_frame: int | None = None,
                 to_frame: int | None = None) -> list[Track]:
    """The video's person segments in a range: tracks cut by an ingest-run boundary joined again, then every
    track cut where its appearance changes (reid_core/segments.py), so a track that switched people is decided
    part by part.

    Every ingest run starts a fresh tracker, so footage ingested as several ranges (an enrollment range first, the
    rest later) would otherwise split a person at each boundary into short parts that match poorly. A track ending
    at a run's last frame is joined to a track starting at the adjacent run's first frame when their boxes overlap
    (IoU >= STITCH_IOU) and they look alike (cosine >= STITCH_COSINE), one-to-one (Hungarian). A joined track
    keeps the id of its first part."""
    segments = []
    for t in _joined_tracks(store, video_id, from_frame, to_frame):
        segments += split_track(t, store.features(t.keys), SEGMENTS)
    return sorted(segments, key=lambda t: (t.frames[0], t.track_id, t.segment))


def _joined_tracks(store: Store, video_id: str, from_frame: int | None, to_frame: int | None) -> list[Track]:
    from scipy.optimize import linear_sum_assignment

    tracks = store.tracks(video_id, from_frame, to_frame)
    runs = [r for r in store.runs(video_id) if r.status == "complete"]
    if len(runs) < 2 or len(tracks) < 2:
        return tracks
    by_id = {t.track_id: t for t in tracks}
    run_of = {tid: r.run_id for r in runs for tid in r.track_map.values()}
    parent = {tid: tid for tid in by_id}

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    feats: dict[int, np.ndarray] = {}

    def feat(t: Track) -> np.ndarray:
        if t.track_id not in feats:
            feats[t.track_id] = _l2(store.features(t.keys).mean(axis=0))
        return feats[t.track_id]

    for r1 in runs:
        for r2 in runs:
            if r2.from_frame != r1.to_frame + 1:
                continue
            ends = [t for t in tracks if run_of.get(t.track_id) == r1.run_id
                    and r1.to_frame - STITCH_GAP <= t.frames[-1] <= r1.to_frame]
            starts = [t for t in tracks if run_of.get(t.track_id) == r2.run_id
                      and r2.from_frame <= t.frames[0] <= r2.from_frame + STITCH_GAP]
            if not ends or not starts:
                continue
            ious = np.array([[a.boxes[-1].iou(b.boxes[0]) for b in starts] for a in ends])
            cos = np.array([[float(feat(a) @ feat(b)) for b in starts] for a in ends])
            ok = (ious >= STITCH_IOU) & (cos >= STITCH_COSINE)
            rows, cols = linear_sum_assignment(-(ious + cos) * ok)
            for i, j in zip(rows, cols):
                if ok[i, j]:
                    parent[root(starts[j].track_id)] = root(ends[i].track_id)
    groups: dict[int, list[Track]] = {}
    for t in tracks:
        groups.setdefault(root(t.track_id), []).append(t)
    out = []
    for parts in groups.values():
        parts.sort(key=lambda t: t.frames[0])
        if len(parts) == 1:
            out.append(parts[0])
            continue
        joined = Track(parts[0].track_id, parts[0].video_id, parts[0].camera)
        for t in parts:
            joined.keys += t.keys
            joined.frames += t.frames
            joined.boxes += t.boxes
            joined.scores += t.scores
        out.append(joined)
    return sorted(out, key=lambda t: (t.frames[0], t.track_id))


# ---- making sure footage is in the store ----------------------------------------------------------------------
def ensure_ingested(store: Store, video: str | Path, from_frame: int = 0, to_frame: int | None = None,
                    camera: str | None = None, progress: Progress | None = None) -> tuple[str, int, int]:
    """Ingest whatever part of the range no completed run covers yet (gaps become runs of their own, so footage
    ingested before is never recomputed). Returns (video_id, from_frame, to_frame)."""
    info = probe(video)
    start, stop = check_range(info, from_frame, to_frame)
    for attempt in range(3):
        try:
            for a, b in _gaps(store, info.video_id, start, stop):
                ingest(video, store, camera=camera, from_frame=a, to_frame=b, progress=progress)
            break
        except OverlapError:
            # Another writer finished a run over part of a gap while this one waited for it (ingest waits for live
            # writers): the gaps are different now.
            if attempt == 2:
                raise
    return info.video_id, start, stop


def _gaps(store: Store, video_id: str, start: int, stop: int) -> list[tuple[int, int]]:
    covered = sorted((r.from_frame, r.to_frame) for r in store.runs(video_id)
                     if r.status == "complete" and r.stride == 1 and r.settings == DEFAULT_SETTINGS.as_dict())
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


# ---- verify and identify ----------------------------------------------------------------------------------------
@dataclass
class TrackDecision:
    track_id: int
    match: Match
    frames: list[int]
    boxes: list[Box]
    keys: list[str] = field(default_factory=list)
    segment: int = 0  # which appearance segment of the track (0: the whole track), see reid_core/segments.py
    video_id: str = ""  # "" where a caller built the decision without them
    camera: str = ""

    @property
    def label(self) -> str:
        return f"{self.track_id}.{self.segment}" if self.segment else str(self.track_id)


def identify(store: Store, video: str | Path, from_frame: int = 0, to_frame: int | None = None,
             threshold: float = DEFAULT_THRESHOLD, method: str = "mean",
             progress: Progress | None = None) -> list[TrackDecision]:
    """Every track in the range -> the enrolled identity it is, or unknown (identity None); best_match and score
    are always given so a caller can sweep thresholds from one run."""
    video_id, start, stop = ensure_ingested(store, video, from_frame, to_frame, progress=progress)
    gallery = Gallery.load(store, method)
    out = []
    for t in video_tracks(store, video_id, start, stop):
        m = gallery.match(track_feature(store, t, method), threshold)
        out.append(TrackDecision(t.track_id, m, t.frames, t.boxes, t.keys, t.segment, t.video_id, t.camera))
    return out


@dataclass
class VerifyResult:
    claim: str
    match: bool
    score: float
    threshold: float
    track_id: int | None
    probe_keys: list[str]
    identity_keys: list[str]


def verify(store: Store, video: str | Path, claim: str, from_frame: int = 0, to_frame: int | None = None,
           threshold: float = DEFAULT_THRESHOLD, method: str = "mean",
           progress: Progress | None = None) -> VerifyResult:
    ident = store.identity(claim)
    if ident is None or not ident.keys:
        known = ", ".join(i.name for i in store.identities()) or "none enrolled yet"
        raise StoreError(f"no identity named {claim!r} (known: {known})")
    video_id, start, stop = ensure_ingested(store, video, from_frame, to_frame, progress=progress)
    gallery = Gallery.load(store, method)
    idx = gallery.names.index(ident.name)
    best: tuple[float, Track | None] = (-1.0, None)
    for t in video_tracks(store, video_id, start, stop):
        if len(t) < MIN_TRACK_CROPS and best[1] is not None:
            continue
        s = float((gallery.centroids[idx] @ track_feature(store, t, method)).max())
        if s > best[0]:
            best = (s, t)
    score, track = best
    if track is None:
        return VerifyResult(ident.name, False, 0.0, threshold, None, [], ident.keys[:6])
    step = max(1, len(track.keys) // 6)
    return VerifyResult(ident.name, score >= threshold, score, threshold, track.track_id, track.keys[::step][:6],
                        ident.keys[:: max(1, len(ident.keys) // 6)][:6])


# ---- search by image --------------------------------------------------------------------------------------------
@dataclass
class SearchHit:
    key: str
    video_id: str
    camera: str
    frame: int
    box: Box
    track_id: int
    score: float


def search_image(store: Store, image: bytes, top_k: int | None = 10) -> list[SearchHit]:
    """An uploaded person crop -> the best crop of each stored track, ranked by cosine similarity."""
    patch = decode_image(image)
    if patch.shape[0] < 16 or patch.shape[1] < 8:
        raise InputError(f"the image is {patch.shape[1]}x{patch.shape[0]} px; upload a person crop of at least 8x16")
    check_store_embedder(store, DEFAULT_SETTINGS)
    feature = load_embedder(DEFAULT_SETTINGS.embedder, DEFAULT_SETTINGS.backend)\
        .embed(to_model_input(patch)[None])[0]
    keys = store.all_crop_keys()
    if not keys:
        return []
    sims = store.features(keys) @ feature
    crops = store.get_crops(keys, jpeg=False)
    best: dict[int, SearchHit] = {}
    for c, s in zip(crops, sims):
        hit = best.get(c.track_id)
        if hit is None or s > hit.score:
            best[c.track_id] = SearchHit(c.key, c.video_id, c.camera, c.frame, c.box, c.track_id, float(s))
    return sorted(best.values(), key=lambda h: -h.score)[:top_k]


# ---- refining and exporting result lists ------------------------------------------------------------------------
UNKNOWN = "unknown"


def refine(decisions: list[TrackDecision], threshold: float | None = None, identity: str | None = None,
           from_frame: int | None = None, to_frame: int | None = None, min_crops: int = 0) -> list[TrackDecision]:
    """A result list re-decided at another threshold (no recomputation: best_match and score are kept) and
    filtered: identity (a name, or "unknown"), frame range (tracks cut to it; tracks outside dropped), track length."""
    out = []
    for d in decisions:
        m = d.match
        if threshold is not None:
            m = Match(m.best_match if m.best_match is not None and m.score >= threshold else None, m.best_match,
                      m.score, threshold)
        if identity:
            if (identity == UNKNOWN and m.identity is not None) or (identity != UNKNOWN and m.identity != identity):
                continue
        keep = [i for i, f in enumerate(d.frames) if (from_frame is None or f >= from_frame)
                and (to_frame is None or f <= to_frame)]
        if len(keep) < max(1, min_crops):
            continue
        out.append(TrackDecision(d.track_id, m, [d.frames[i] for i in keep], [d.boxes[i] for i in keep],
                                 [d.keys[i] for i in keep] if len(d.keys) == len(d.frames) else d.keys, d.segment,
                                 d.video_id, d.camera))
    return out


def decisions_json(decisions: list[TrackDecision], threshold: float, video: VideoRecord | None = None) -> dict:
    """The `reid identify --json` contract. With the stored video the decisions are of, it also says where and
    when: top-level "video" (path), "video_id", "camera", "fps", and per track "camera", "first_s", "last_s"
    (frame / fps; None when the container gives no frame rate)."""
    out: dict = {"threshold": threshold}
    if video is not None:
        other = {d.video_id for d in decisions if d.video_id and d.video_id != video.video_id}
        if other:
            raise InputError(f"the decisions are of video {sorted(other)[0][:12]}, not of {video.path} "
                             f"({video.video_id[:12]})")
        out.update({"video": video.path, "video_id": video.video_id, "camera": video.camera, "fps": video.fps})
    tracks = []
    for d in decisions:
        t = {"track_id": d.track_id, "segment": d.segment, "identity": d.match.identity,
             "best_match": d.match.best_match, "score": round(d.match.score, 4),
             "frames": [int(f) for f in d.frames], "boxes": [b.as_list() for b in d.boxes]}
        if video is not None:
            t["camera"] = d.camera or video.camera
            t["first_s"] = _seconds(d.frames[0], video.fps) if d.frames else None
            t["last_s"] = _seconds(d.frames[-1], video.fps) if d.frames else None
        tracks.append(t)
    out["tracks"] = tracks
    return out


def _seconds(frame: int, fps: float) -> float | None:
    return round(frame / fps, 3) if fps and fps > 0 else None


def filter_hits(hits: list[SearchHit], min_score: float | None = None, camera: str | None = None,
                video_id: str | None = None, from_frame: int | None = None,
                to_frame: int | None = None) -> list[SearchHit]:
    """Search results narrowed by similarity, camera, video (id or id prefix) and frame range."""
    return [h for h in hits if (min_score is None or h.score >= min_score) and (not camera or h.camera == camera)
            and (not video_id or h.video_id.startswith(video_id))
            and (from_frame is None or h.frame >= from_frame) and (to_frame is None or h.frame <= to_frame)]


def hits_json(hits: list[SearchHit], store: Store | None = None) -> dict:
    paths = {v.video_id: v.path for v in store.videos()} if store is not None else {}
    return {"results": [{"key": h.key, "video_id": h.video_id, "video": paths.get(h.video_id), "camera": h.camera,
                         "frame": h.frame, "box": h.box.as_list(), "track_id": h.track_id, "score": round(h.score, 4)}
                        for h in hits]}


def export(result: dict, path: str | Path) -> Path:
    """Save a result list (identify's {"tracks": ...} or search's {"results": ...}) as .json or .csv."""
    import csv

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv"):
        raise InputError(f"export file must end in .csv or .json, got {path.name!r}")
    if suffix == ".json":
        path.write_text(json.dumps(result, indent=1))
        return path
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        if "tracks" in result:
            # the columns after "crops" came later; tools reading the first nine by position keep working
            w.writerow(["track_id", "segment", "identity", "best_match", "score", "threshold", "first_frame",
                        "last_frame", "crops", "video", "video_id", "camera", "first_s", "last_s", "boxes"])
            for t in result["tracks"]:
                w.writerow([t["track_id"], t.get("segment", 0), t["identity"] or UNKNOWN, t["best_match"] or "", t["score"],
                            result.get("threshold", ""), t["frames"][0] if t["frames"] else "",
                            t["frames"][-1] if t["frames"] else "", len(t["frames"]),
                            result.get("video") or "", result.get("video_id") or "",
                            t.get("camera") or result.get("camera") or "", _blank(t.get("first_s")),
                            _blank(t.get("last_s")), _boxes_cell(t["frames"], t.get("boxes", []))])
        else:
            w.writerow(["rank", "score", "camera", "video_id", "video", "frame", "track_id", "box", "key"])
            for i, h in enumerate(result["results"], 1):
                w.writerow([i, h["score"], h["camera"], h["video_id"], h.get("video") or "", h["frame"],
                            h["track_id"], " ".join(str(v) for v in h["box"]), h["key"]])
    return path


def _blank(value) -> object:
    return "" if value is None else value


def _boxes_cell(frames: list[int], boxes: list[list[float]]) -> str:
    """frame:x,y,w,h;frame:x,y,w,h... (one CSV cell per track, so the table stays one row per track)."""
    return ";".join(f"{f}:" + ",".join(f"{v:g}" for v in b) for f, b in zip(frames, boxes))


def parse_box(text: str) -> Box:
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--box must be x,y,w,h in pixels (e.g. 360,190,40,86); got {text!r}") from None
    if w < 0 or h < 0:
        raise InputError("--box width and height must be positive")
    return Box(x, y, w, h)
