"""Decisions: enroll a person, verify a claim, identify every track (open set), search by image.

One similarity scale everywhere: the cosine between L2-normalised mean features (a track's crops against an
identity's enrolled tracks). Scores are in -1..1, in practice 0..1; the app shows them as percentages.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reid_core.crops import decode_image, to_model_input
from reid_core.embedding import load_embedder
from reid_core.errors import InputError, StoreError
from reid_core.ingest import DEFAULT_SETTINGS, Progress, ingest
from reid_core.store import Store, validate_name
from reid_core.types import Box, Identity, Match, Track
from reid_core.video import check_range, probe

# Calibrated by bench/calibrate.py on PETS09-S2L1 (see README, "Thresholds"): between the genuine and impostor
# track-centroid score distributions.
DEFAULT_THRESHOLD = 0.80
MIN_TRACK_CROPS = 3  # shorter tracks are mostly detector flicker; they still get scored but never chosen first


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
            crops = store.get_crops(ident.keys, jpeg=False, feature=True)
            groups: dict[int, list] = {}
            for c in crops:
                groups.setdefault(c.track_id, []).append(c)
            rows = [aggregate(np.stack([c.feature for c in g]), [c.box for c in g], [c.score for c in g], method)
                    for g in groups.values()]
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


# ---- making sure footage is in the store ----------------------------------------------------------------------
def ensure_ingested(store: Store, video: str | Path, from_frame: int = 0, to_frame: int | None = None,
                    camera: str | None = None, progress: Progress | None = None) -> tuple[str, int, int]:
    """Ingest whatever part of the range no completed run covers yet (gaps become runs of their own, so footage
    ingested before is never recomputed). Returns (video_id, from_frame, to_frame)."""
    info = probe(video)
    start, stop = check_range(info, from_frame, to_frame)
    covered = sorted((r.from_frame, r.to_frame) for r in store.runs(info.video_id)
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
    for a, b in gaps:
        ingest(video, store, camera=camera, from_frame=a, to_frame=b, progress=progress)
    return info.video_id, start, stop


# ---- enroll -----------------------------------------------------------------------------------------------------
@dataclass
class EnrollResult:
    identity: Identity
    added_keys: list[str]
    track_ids: list[int]
    sample_keys: list[str]


def _track_at(tracks: list[Track], frame: int, box: Box) -> Track | None:
    best, best_iou = None, 0.0
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    for t in tracks:
        b = t.box_at(frame)
        if b is None:
            continue
        iou = b.iou(box) if box.w > 1 and box.h > 1 else (1.0 if b.contains(cx, cy) else 0.0)
        if iou > best_iou:
            best, best_iou = t, iou
    return best if best_iou >= 0.3 else None


def pick_person(store: Store, video_id: str, from_frame: int, to_frame: int, at_frame: int | None = None,
                box: Box | None = None) -> Track:
    tracks = [t for t in store.tracks(video_id, from_frame, to_frame)]
    if not tracks:
        raise StoreError(f"nobody was detected in frames {from_frame}..{to_frame}")
    if at_frame is not None and box is not None:
        if not from_frame <= at_frame <= to_frame:
            raise InputError(f"--at-frame {at_frame} is outside the range {from_frame}..{to_frame}")
        picked = _track_at(tracks, at_frame, box)
        if picked is None:
            raise StoreError(f"the box {box.as_list()} at frame {at_frame} holds nobody: no tracked person "
                             f"overlaps it; people at that frame: "
                             f"{[t.box_at(at_frame).as_list() for t in tracks if t.box_at(at_frame)] or 'none'}")
        return picked
    real = [t for t in tracks if len(t) >= MIN_TRACK_CROPS]
    if len(real) == 1:
        return real[0]
    listing = "; ".join(f"track {t.track_id}: frame {t.frames[0]} box {','.join(str(int(v)) for v in t.boxes[0].as_list())}"
                        for t in real[:12])
    raise StoreError(f"{len(real)} people are in frames {from_frame}..{to_frame}; pick one with --at-frame F "
                     f"--box x,y,w,h (in the app: click the person). Candidates: {listing}")


def enroll(store: Store, video: str | Path, name: str, from_frame: int = 0, to_frame: int | None = None,
           at_frame: int | None = None, box: Box | None = None, camera: str | None = None,
           progress: Progress | None = None) -> EnrollResult:
    name = validate_name(name)  # before any work: a bad name must not cost an ingest
    video_id, start, stop = ensure_ingested(store, video, from_frame, to_frame, camera, progress)
    track = pick_person(store, video_id, start, stop, at_frame, box)
    ident = store.add_to_identity(name, track.keys)
    step = max(1, len(track.keys) // 6)
    return EnrollResult(ident, track.keys, [track.track_id], track.keys[::step][:6])


# ---- verify and identify ----------------------------------------------------------------------------------------
@dataclass
class TrackDecision:
    track_id: int
    match: Match
    frames: list[int]
    boxes: list[Box]
    keys: list[str] = field(default_factory=list)


def identify(store: Store, video: str | Path, from_frame: int = 0, to_frame: int | None = None,
             threshold: float = DEFAULT_THRESHOLD, method: str = "mean",
             progress: Progress | None = None) -> list[TrackDecision]:
    """Every track in the range -> the enrolled identity it is, or unknown (identity None); best_match and score
    are always given so a caller can sweep thresholds from one run."""
    video_id, start, stop = ensure_ingested(store, video, from_frame, to_frame, progress=progress)
    gallery = Gallery.load(store, method)
    out = []
    for t in store.tracks(video_id, start, stop):
        m = gallery.match(track_feature(store, t, method), threshold)
        out.append(TrackDecision(t.track_id, m, t.frames, t.boxes, t.keys))
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
    for t in store.tracks(video_id, start, stop):
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


def search_image(store: Store, image: bytes, top_k: int = 10) -> list[SearchHit]:
    """An uploaded person crop -> the best crop of each stored track, ranked by cosine similarity."""
    patch = decode_image(image)
    if patch.shape[0] < 16 or patch.shape[1] < 8:
        raise InputError(f"the image is {patch.shape[1]}x{patch.shape[0]} px; upload a person crop of at least 8x16")
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


def parse_box(text: str) -> Box:
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--box must be x,y,w,h in pixels (e.g. 360,190,40,86); got {text!r}") from None
    if w < 0 or h < 0:
        raise InputError("--box width and height must be positive")
    return Box(x, y, w, h)
