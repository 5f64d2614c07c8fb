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
from reid_core.face_evidence import FaceGallery, identity_faces, track_faces
from reid_core.fusion import FACE_THRESHOLD, Evidence, best_of, fuse
from reid_core.ingest import Progress, check_store_embedder, ensure_ingested
from reid_core.sampling import track_features
from reid_core.segments import SegmentConfig, split_track
from reid_core.settings import Settings, current
from reid_core.spacetime import Span, StFactor, TransitionModel
from reid_core.st_store import resolve as resolve_st
from reid_core.st_store import span as st_span
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
    return aggregate(track_features(store, track.keys, track.frames, track.track_id), track.boxes, track.scores,
                     method)


@dataclass
class Gallery:
    """Each identity as the centroids of the tracks it was enrolled from (one person seen in different places
    and light keeps several appearances instead of one blurred average)."""

    names: list[str]
    centroids: list[np.ndarray]  # per identity: (n_tracks, D)
    spans: list[list[Span]] = field(default_factory=list)  # per identity, per centroid: where and when it was seen

    @classmethod
    def load(cls, store: Store, method: AggregationMethod = "mean", settings: Settings | None = None) -> Gallery:
        segments = current(settings).segments
        videos = {v.video_id: v for v in store.videos()}
        names, cents, spans = [], [], []
        for ident in store.identities():
            if not ident.keys:
                continue
            segs = identity_segments(store, ident, segments)
            rows = [aggregate(f, seg.boxes, seg.scores, method) for seg, f in segs]
            names.append(ident.name)
            cents.append(np.stack(rows))
            spans.append([st_span(videos.get(seg.video_id), seg.camera, seg.frames[0], seg.frames[-1])
                          for seg, _ in segs])
        return cls(names, cents, spans)

    def scores(self, feature: np.ndarray) -> dict[str, float]:
        return {n: float((c @ feature).max()) for n, c in zip(self.names, self.centroids)}

    def match(self, feature: np.ndarray, threshold: float) -> Match:
        scores = self.scores(feature)
        if not scores:
            return Match(None, None, 0.0, threshold)
        best = max(scores, key=scores.__getitem__)
        return Match(best if scores[best] >= threshold else None, best, scores[best], threshold)

    def match_st(self, feature: np.ndarray, threshold: float, probe: Span,
                 model: TransitionModel | None) -> tuple[Match, StFactor | None, float]:
        """`match` with each centroid's cosine moved by the timing between its sighting and the probe's
        (reid_core/spacetime.py; same scale, so the threshold means the same). Returns the match, the st factor
        of the winning centroid and its plain cosine. Without a model, or where timing says nothing, it is `match`."""
        if model is None or len(self.spans) != len(self.names):
            m = self.match(feature, threshold)
            return m, None, m.score
        best: tuple[float, str | None, StFactor | None, float] = (-np.inf, None, None, 0.0)
        for name, cents, spans in zip(self.names, self.centroids, self.spans):
            for s, sp in zip((cents @ feature).tolist(), spans):
                fac = model.factor(sp, probe)
                adjusted = model.adjust(s, fac)
                if adjusted > best[0]:
                    best = (adjusted, name, fac, s)
        score, winner, why, visual = best
        if winner is None:
            return Match(None, None, 0.0, threshold), None, 0.0
        return Match(winner if score >= threshold else None, winner, score, threshold), why, visual


def identity_segments(store: Store, ident: Identity,
                      segments: SegmentConfig | None = None) -> list[tuple[Track, np.ndarray]]:
    """An identity's crops as appearance-consistent segments with their features (grouped by track, each group
    cut where its appearance changes), so one stray stretch never blurs the rest."""
    segments = segments or current().segments
    crops = store.get_crops(ident.keys, jpeg=False)
    groups: dict[int, Track] = {}
    for c in sorted(crops, key=lambda c: (c.track_id, c.frame)):
        t = groups.setdefault(c.track_id, Track(c.track_id, c.video_id, c.camera))
        t.keys.append(c.key)
        t.frames.append(c.frame)
        t.boxes.append(c.box)
        t.scores.append(c.score)
    out = []
    for tid, t in groups.items():
        f = track_features(store, t.keys, t.frames, tid)
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
    visual_score: float | None = None  # the plain cosine where camera timing (st) moved match.score; else None
    st: str = ""  # why timing moved it, e.g. "cam1 -> cam2 in 3.2 s: likely (p=0.041)"
    evidence: Evidence = "body"  # what decided (reid_core/fusion.py); "body" whenever the track shows no face
    face_score: float | None = None  # face cosine to best_match; None: no face on the track or none enrolled
    face_keys: list[str] = field(default_factory=list)  # crops whose faces were used (face_evidence.THUMB_KIND)

    @property
    def label(self) -> str:
        return f"{self.track_id}.{self.segment}" if self.segment else str(self.track_id)


def identify(store: Store, video: str | Path, from_frame: int = 0, to_frame: int | None = None,
             threshold: float | None = None, method: AggregationMethod = "mean",
             progress: Progress | None = None, settings: Settings | None = None,
             st: bool | None = None) -> list[TrackDecision]:
    """Every track in the range -> the enrolled identity it is, or unknown (identity None); best_match and score
    are always given so a caller can sweep thresholds from one run. st: use the store's camera-timing model (None:
    if it has one; reid_core/st_store.py)."""
    settings = current(settings)
    threshold = settings.threshold if threshold is None else threshold
    video_id, start, stop = ensure_ingested(store, video, from_frame, to_frame, progress=progress,
                                            settings=settings.ingest)
    gallery = Gallery.load(store, method, settings)
    model = resolve_st(store, st)
    record = store.video(video_id) if model is not None else None
    faces = FaceGallery.load(store) if settings.faces else FaceGallery([], [])
    out = []
    for t in video_tracks(store, video_id, start, stop, settings):
        probe = st_span(record, t.camera, t.frames[0], t.frames[-1])
        m, fac, visual = gallery.match_st(track_feature(store, t, method), threshold, probe, model)
        moved = fac is not None and fac.p is not None
        out.append(_with_face(store, t, gallery, faces, threshold, method, TrackDecision(
            t.track_id, m, t.frames, t.boxes, t.keys, t.segment, t.video_id, t.camera, visual if moved else None,
            fac.text if moved and fac else "")))
    return out


def _with_face(store: Store, t: Track, gallery: Gallery, faces: FaceGallery, threshold: float,
               method: AggregationMethod, d: TrackDecision) -> TrackDecision:
    """The body decision `d`, re-decided by face + body fusion where the track shows a face and someone has one
    enrolled; else `d` as it is. Fusion takes the plain body cosines (no camera timing)."""
    seen = track_faces(store, t) if faces.names else None
    if seen is None or seen.feature is None:
        return d
    face_scores = faces.scores(seen.feature)
    best = best_of(gallery.scores(track_feature(store, t, method)), face_scores, threshold)
    assert best is not None  # face_scores is not empty
    name, f = best
    d.match = Match(name if f.match else None, name, f.score, threshold)
    d.evidence, d.face_score, d.face_keys = f.evidence, face_scores.get(name), seen.keys
    if f.evidence != "body":
        d.visual_score, d.st = None, ""
    return d


@dataclass
class VerifyResult:
    claim: str
    match: bool
    score: float
    threshold: float
    track_id: int | None
    probe_keys: list[str]
    identity_keys: list[str]
    evidence: Evidence = "body"
    face_score: float | None = None  # face cosine of the chosen track to the claim's faces
    body_score: float | None = None  # body cosine of the chosen track (None: the claim has no body enrolled)
    face_threshold: float = FACE_THRESHOLD
    probe_face_keys: list[str] = field(default_factory=list)  # crops of the chosen track whose faces were used


def verify(store: Store, video: str | Path, claim: str, from_frame: int = 0, to_frame: int | None = None,
           threshold: float | None = None, method: AggregationMethod = "mean",
           progress: Progress | None = None, settings: Settings | None = None) -> VerifyResult:
    ident = store.identity(claim)
    if ident is None or not (ident.keys or ident.faces):
        known = ", ".join(i.name for i in store.identities()) or "none enrolled yet"
        raise StoreError(f"no identity named {claim!r} (known: {known})")
    settings = current(settings)
    threshold = settings.threshold if threshold is None else threshold
    video_id, start, stop = ensure_ingested(store, video, from_frame, to_frame, progress=progress,
                                            settings=settings.ingest)
    gallery = Gallery.load(store, method, settings)
    claim_faces = identity_faces(store, ident) if settings.faces else np.zeros((0, 256), np.float32)
    if len(claim_faces):
        return _verify_fused(store, ident, gallery, claim_faces, video_tracks(store, video_id, start, stop, settings),
                             threshold, method)
    if ident.name not in gallery.names:
        raise StoreError(f"{ident.name!r} is enrolled by face only, and face evidence is off ($REID_FACES)")
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


def _verify_fused(store: Store, ident: Identity, gallery: Gallery, claim_faces: np.ndarray, tracks: list[Track],
                  threshold: float, method: AggregationMethod) -> VerifyResult:
    """verify for a claim with enrolled faces: the track with the most fused evidence for the claim. A track
    without a face is scored by its body alone, so with no face in the footage this is the body's answer."""
    body_ref = gallery.centroids[gallery.names.index(ident.name)] if ident.name in gallery.names else None
    best = None
    for t in tracks:
        if len(t) < MIN_TRACK_CROPS and best is not None:
            continue
        body = float((body_ref @ track_feature(store, t, method)).max()) if body_ref is not None else None
        seen = track_faces(store, t)
        face = float((claim_faces @ seen.feature).max()) if seen.feature is not None else None
        if body is None and face is None:
            continue
        f = fuse(body, face, threshold)
        if best is None or f.z > best[0].z:
            best = (f, t, body, face, seen.keys)
    step = max(1, len(ident.keys) // 6)
    if best is None:
        return VerifyResult(ident.name, False, 0.0, threshold, None, [], ident.keys[::step][:6], "face")
    f, track, body, face, face_keys = best
    probe_step = max(1, len(track.keys) // 6)
    return VerifyResult(ident.name, f.match, f.score, threshold, track.track_id, track.keys[::probe_step][:6],
                        ident.keys[::step][:6], f.evidence, face, body, FACE_THRESHOLD, face_keys)


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
    visual_score: float | None = None  # the plain cosine where camera timing (st) moved score; else None
    st: str = ""  # why, e.g. "vs the best hit: cam1 -> cam2 in 3.2 s: likely (p=0.041)"


def search_image(store: Store, image: bytes, top_k: int | None = 10,
                 settings: Settings | None = None, st: bool | None = None) -> list[SearchHit]:
    """An uploaded person crop -> the best crop of each stored track, ranked by cosine similarity. An image has
    no camera or time, so with camera timing on (st; None: if the store has a model) the best hit is the anchor:
    every other track's cosine is moved by the timing between it and the anchor's track (st_rescore)."""
    patch = decode_image(image)
    if patch.shape[0] < 16 or patch.shape[1] < 8:
        raise InputError(f"the image is {patch.shape[1]}x{patch.shape[0]} px; upload a person crop of at least 8x16")
    ingest = current(settings).ingest
    check_store_embedder(store, ingest)
    feature = load_embedder(ingest.embedder, ingest.backend)\
        .embed(to_model_input(patch)[None])[0]
    keys = store.all_crop_keys()
    feats, present = store.features_where(keys)
    keys = [k for k, ok in zip(keys, present) if ok]  # only crops with their own feature are ranked
    if not keys:
        return []
    sims = feats[present] @ feature
    crops = store.get_crops(keys, jpeg=False)
    best: dict[int, SearchHit] = {}
    for c, s in zip(crops, sims):
        hit = best.get(c.track_id)
        if hit is None or s > hit.score:
            best[c.track_id] = SearchHit(c.key, c.video_id, c.camera, c.frame, c.box, c.track_id, float(s))
    ranked = sorted(best.values(), key=lambda h: -h.score)
    model = resolve_st(store, st)
    return (st_rescore(store, ranked, model) if model is not None else ranked)[:top_k]


def st_rescore(store: Store, hits: list[SearchHit], model: TransitionModel) -> list[SearchHit]:
    """Hits (best first) re-scored by camera timing against the first one, the anchor, and sorted again."""
    if not hits:
        return hits
    videos = {v.video_id: v for v in store.videos()}
    frames: dict[int, tuple[int, int]] = {}
    for vid in {h.video_id for h in hits}:
        frames.update({t.track_id: (t.frames[0], t.frames[-1]) for t in store.tracks(vid) if t.frames})

    def span_of(h: SearchHit) -> Span:
        first, last = frames.get(h.track_id, (h.frame, h.frame))
        return st_span(videos.get(h.video_id), h.camera, first, last)

    anchor = span_of(hits[0])
    out = [hits[0]]
    for h in hits[1:]:
        fac = model.factor(anchor, span_of(h))
        if fac.p is None:
            out.append(h)
            continue
        out.append(SearchHit(h.key, h.video_id, h.camera, h.frame, h.box, h.track_id, model.adjust(h.score, fac),
                             h.score, f"vs the best hit: {fac.text}"))
    return sorted(out, key=lambda h: -h.score)
