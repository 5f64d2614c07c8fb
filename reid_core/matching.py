"""Decisions: verify a claim, identify every track (open set), search by image, against the gallery.

One similarity scale everywhere: the cosine between L2-normalised mean features (a track's crops against an
identity's enrolled segments; the best counts). Scores are in -1..1, in practice 0..1; the app shows them as
percentages. Every threshold is the embedder's (Settings.calibration, reid_core/calibration.py). Footage a flow
needs is ingested first (ingest.ensure_ingested); tracks cut by an ingest-run boundary are joined again
(stitching.video_tracks). Measured calibration and open-set numbers: docs/identify.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from reid_core.crops import decode_image, to_model_input
from reid_core.embedding import load_embedder
from reid_core.errors import InputError, StoreError
from reid_core.ingest import Progress, check_store_embedder, ensure_ingested
from reid_core.segments import SegmentConfig, split_track
from reid_core.settings import Settings, current
from reid_core.stitching import video_tracks
from reid_core.store import Store
from reid_core.types import Box, Identity, Match, Track
from reid_core.vectors import l2_normalize

AggregationMethod = Literal["mean", "quality"]  # a set of crops -> one feature: plain mean, or quality-weighted
MIN_TRACK_CROPS = 3  # shorter tracks are mostly detector flicker; they still get scored but never chosen first


def aggregate(features: np.ndarray, boxes: list[Box], scores: list[float],
              method: AggregationMethod = "mean") -> np.ndarray:
    """One feature for a set of crops: plain mean, or weighted by detector score x box height (small, uncertain
    boxes count less)."""
    if method == "mean":
        return l2_normalize(features.mean(axis=0))
    if method == "quality":
        w = np.array([s * min(1.0, b.h / 128.0) for s, b in zip(scores, boxes)], np.float32)
        return l2_normalize((features * w[:, None]).sum(axis=0))
    raise InputError(f"unknown aggregation {method!r}: use 'mean' or 'quality'")


def track_feature(store: Store, track: Track, method: AggregationMethod = "mean") -> np.ndarray:
    return aggregate(store.features(track.keys), track.boxes, track.scores, method)


@dataclass
class Gallery:
    """Each identity as the centroids of the tracks it was enrolled from (one person seen in different places
    and light keeps several appearances instead of one blurred average)."""

    names: list[str]
    centroids: list[np.ndarray]  # per identity: (n_tracks, D)

    @classmethod
    def load(cls, store: Store, method: AggregationMethod = "mean", settings: Settings | None = None) -> Gallery:
        segments = current(settings).segments
        names, cents = [], []
        for ident in store.identities():
            if not ident.keys:
                continue
            rows = [aggregate(f, seg.boxes, seg.scores, method)
                    for seg, f in identity_segments(store, ident, segments)]
            names.append(ident.name)
            cents.append(np.stack(rows))
        return cls(names, cents)

    def scores(self, feature: np.ndarray) -> dict[str, float]:
        return {n: float((c @ feature).max()) for n, c in zip(self.names, self.centroids)}

    def match(self, feature: np.ndarray, threshold: float) -> Match:
        scores = self.scores(feature)
        if not scores:
            return Match(None, None, 0.0, threshold)
        best = max(scores, key=scores.__getitem__)
        return Match(best if scores[best] >= threshold else None, best, scores[best], threshold)


def identity_segments(store: Store, ident: Identity,
                      segments: SegmentConfig | None = None) -> list[tuple[Track, np.ndarray]]:
    """An identity's crops as appearance-consistent segments with their features (grouped by track, each group
    cut where its appearance changes), so one stray stretch never blurs the rest."""
    segments = segments or current().segments
    crops = store.get_crops(ident.keys, jpeg=False, feature=True)
    groups: dict[int, Track] = {}
    feats: dict[int, list[np.ndarray]] = {}
    for c in sorted(crops, key=lambda c: (c.track_id, c.frame)):
        t = groups.setdefault(c.track_id, Track(c.track_id, c.video_id, c.camera))
        t.keys.append(c.key)
        t.frames.append(c.frame)
        t.boxes.append(c.box)
        t.scores.append(c.score)
        assert c.feature is not None  # fetched with feature=True
        feats.setdefault(c.track_id, []).append(c.feature)
    out = []
    for tid, t in groups.items():
        f = np.stack(feats[tid])
        row = {k: i for i, k in enumerate(t.keys)}
        for seg in split_track(t, f, segments):
            out.append((seg, f[[row[k] for k in seg.keys]]))
    return out


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
             threshold: float | None = None, method: AggregationMethod = "mean",
             progress: Progress | None = None, settings: Settings | None = None) -> list[TrackDecision]:
    """Every track in the range -> the enrolled identity it is, or unknown (identity None); best_match and score
    are always given so a caller can sweep thresholds from one run."""
    settings = current(settings)
    threshold = settings.threshold if threshold is None else threshold
    video_id, start, stop = ensure_ingested(store, video, from_frame, to_frame, progress=progress,
                                            settings=settings.ingest)
    gallery = Gallery.load(store, method, settings)
    out = []
    for t in video_tracks(store, video_id, start, stop, settings):
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
           threshold: float | None = None, method: AggregationMethod = "mean",
           progress: Progress | None = None, settings: Settings | None = None) -> VerifyResult:
    ident = store.identity(claim)
    if ident is None or not ident.keys:
        known = ", ".join(i.name for i in store.identities()) or "none enrolled yet"
        raise StoreError(f"no identity named {claim!r} (known: {known})")
    settings = current(settings)
    threshold = settings.threshold if threshold is None else threshold
    video_id, start, stop = ensure_ingested(store, video, from_frame, to_frame, progress=progress,
                                            settings=settings.ingest)
    gallery = Gallery.load(store, method, settings)
    idx = gallery.names.index(ident.name)
    best: tuple[float, Track | None] = (-1.0, None)
    for t in video_tracks(store, video_id, start, stop, settings):
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


def search_image(store: Store, image: bytes, top_k: int | None = 10,
                 settings: Settings | None = None) -> list[SearchHit]:
    """An uploaded person crop -> the best crop of each stored track, ranked by cosine similarity."""
    patch = decode_image(image)
    if patch.shape[0] < 16 or patch.shape[1] < 8:
        raise InputError(f"the image is {patch.shape[1]}x{patch.shape[0]} px; upload a person crop of at least 8x16")
    ingest = current(settings).ingest
    check_store_embedder(store, ingest)
    feature = load_embedder(ingest.embedder, ingest.backend)\
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
