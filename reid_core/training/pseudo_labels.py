"""Pseudo-identities for site adaptation, from the store's own tracks and no labels at all.

- Crops of one track are the same person (positives).
- Two tracks seen at the same moment in the same video are certainly different people (sure negatives).
- A track that switched people is split where its appearance changes (reid_core/segments.py, the mechanism every
  flow uses, with `switch_similarity` as its change threshold); crops far from their (possibly new) segment's mean
  are dropped as outliers.
- Tracks of the same person (someone who leaves and comes back gets a new track) can optionally be merged when
  their mean features are alike and they never co-occur, so the losses do not push one person away from itself.

The features used are the ones the store already holds (the ingest embedder's), so nothing is re-embedded.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reid_core.errors import InputError
from reid_core.sampling import track_features
from reid_core.segments import SegmentConfig, cut_points, split_indices
from reid_core.training.data import TrainData, TrainSample
from reid_core.vectors import l2_normalize


@dataclass(frozen=True)
class PseudoLabelConfig:
    min_crops: int = 8  # shorter tracks (after splitting) teach little and are often false detections
    switch_similarity: float = 0.5  # split a track where its two sides' mean features fall below this cosine
    min_segment: int = 4  # crops on each side of a split
    outlier_similarity: float = 0.4  # drop crops whose cosine to their track's mean is below this
    # Merge non-co-occurring tracks whose mean features are at least this alike (0 disables). 0.8 is the
    # identity-decision threshold calibrated for the default embedder (bench/calibrate.py).
    merge_similarity: float = 0.8
    negatives: str = "all"  # "all": any two pseudo-identities; "co-occurring": only ones seen at the same time


@dataclass
class _Segment:
    keys: list[str]
    frames: np.ndarray
    feats: np.ndarray
    video: str
    camera: str
    track: int

    def mean(self) -> np.ndarray:
        m = self.feats.mean(0)
        return l2_normalize(m)


@dataclass
class PseudoLabelReport:
    tracks_in: int
    crops_in: int
    splits: int  # tracks cut because their appearance changed
    outliers_dropped: int
    short_dropped: int  # segments under min_crops
    merged: int  # segments folded into another pseudo-identity
    identities: int
    crops: int
    sure_negative_pairs: int  # pairs of pseudo-identities seen at the same moment
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.tracks_in} tracks / {self.crops_in} crops -> {self.identities} pseudo-identities / "
                f"{self.crops} crops ({self.splits} split, {self.merged} merged, {self.short_dropped} short and "
                f"{self.outliers_dropped} outlier crops dropped; {self.sure_negative_pairs} sure-negative pairs)")


def _split(seg: _Segment, cfg: PseudoLabelConfig) -> list[_Segment]:
    """The shared appearance-segment mechanism (reid_core/segments.py), on a training segment."""
    cuts = cut_points(seg.feats, SegmentConfig(cfg.switch_similarity, cfg.min_segment))
    return [_Segment([seg.keys[i] for i in part], seg.frames[list(part)], seg.feats[list(part)], seg.video,
                     seg.camera, seg.track) for part in split_indices(len(seg.keys), cuts)]


def _co_occur(a: _Segment, b: _Segment) -> bool:
    if a.video != b.video:
        return False
    return bool(np.intersect1d(a.frames, b.frames, assume_unique=False).size)


def build_pseudo_labels(tracks: list[tuple[str, str, int, list[str], list[int], np.ndarray]],
                        config: PseudoLabelConfig = PseudoLabelConfig()) -> tuple[list[_Segment], np.ndarray,
                                                                                   np.ndarray, PseudoLabelReport]:
    """tracks: (video id, camera, track id, crop keys, frames, features (N, D) L2-normalised) in time order.

    Returns the kept segments, each segment's pseudo-identity, the (identities x identities) sure-negative
    matrix, and a report.
    """
    if config.negatives not in ("all", "co-occurring"):
        raise InputError(f"negatives must be 'all' or 'co-occurring', got {config.negatives!r}")
    segments: list[_Segment] = []
    splits = outliers = short = 0
    for video, camera, track, keys, frames, feats in tracks:
        order = np.argsort(frames, kind="stable")
        seg = _Segment([keys[i] for i in order], np.asarray(frames)[order], np.asarray(feats, np.float32)[order],
                       video, camera, track)
        parts = _split(seg, config)
        splits += len(parts) > 1
        for p in parts:
            keep = p.feats @ p.mean() >= config.outlier_similarity
            outliers += int((~keep).sum())
            p = _Segment([k for k, ok in zip(p.keys, keep) if ok], p.frames[keep], p.feats[keep], p.video,
                         p.camera, p.track)
            if len(p.keys) < config.min_crops:
                short += 1
                continue
            segments.append(p)
    if len(segments) < 2:
        raise InputError(f"only {len(segments)} usable track(s) after filtering (min {config.min_crops} crops each); "
                         f"ingest more footage or lower --min-crops")

    n = len(segments)
    means = np.stack([s.mean() for s in segments])
    cannot = np.zeros((n, n), bool)
    for i in range(n):
        for j in range(i + 1, n):
            cannot[i, j] = cannot[j, i] = _co_occur(segments[i], segments[j])

    # Constrained average-linkage merging: the most similar pair of clusters first, never across a sure-negative
    # pair. sums[a, b] holds the summed cosine between the members of clusters a and b.
    cluster = np.arange(n)
    merged = 0
    if config.merge_similarity > 0:
        sums = (means @ means.T).astype(np.float64)
        size = np.ones(n)
        blocked = cannot.copy()
        alive = np.ones(n, bool)
        while True:
            avg = sums / np.outer(size, size)
            avg[blocked | ~alive[:, None] | ~alive[None, :]] = -np.inf
            np.fill_diagonal(avg, -np.inf)
            a, b = np.unravel_index(int(np.argmax(avg)), avg.shape)
            if avg[a, b] < config.merge_similarity:
                break
            sums[a] += sums[b]
            sums[:, a] += sums[:, b]
            blocked[a] |= blocked[b]
            blocked[:, a] |= blocked[:, b]
            size[a] += size[b]
            alive[b] = False
            cluster[cluster == b] = a
            merged += 1
    relabel = {int(c): i for i, c in enumerate(sorted(set(cluster.tolist())))}
    labels = np.array([relabel[int(c)] for c in cluster], np.int64)
    k = len(relabel)
    sure = np.zeros((k, k), bool)
    ii, jj = np.nonzero(cannot)
    sure[labels[ii], labels[jj]] = True
    report = PseudoLabelReport(
        tracks_in=len(tracks), crops_in=sum(len(t[3]) for t in tracks), splits=splits, outliers_dropped=outliers,
        short_dropped=short, merged=merged, identities=k, crops=sum(len(s.keys) for s in segments),
        sure_negative_pairs=int(np.triu(sure, 1).sum()))
    return segments, labels, sure, report


def pseudo_label_data(store_path: str, video_id: str | None = None, from_frame: int | None = None,
                      to_frame: int | None = None,
                      config: PseudoLabelConfig = PseudoLabelConfig()) -> tuple[TrainData, PseudoLabelReport]:
    """Training data from a store: crops labelled by pseudo-identity, with the sure-negative matrix attached when
    `config.negatives == "co-occurring"`."""
    from reid_core.store import Store

    store = Store(store_path)
    stored = store.tracks(video_id, from_frame, to_frame)
    if not stored:
        raise InputError(f"the store at {store_path} has no tracks"
                         + (" in that range" if from_frame is not None or to_frame is not None else "")
                         + "; ingest footage first (reid ingest VIDEO)")
    rows = [(t.video_id, t.camera, t.track_id, t.keys, t.frames, track_features(store, t.keys, t.frames, t.track_id))
            for t in sorted(stored, key=lambda t: t.track_id)]
    segments, labels, sure, report = build_pseudo_labels(rows, config)
    samples = [TrainSample(key, int(label), seg.camera, int(frame), seg.track)
               for seg, label in zip(segments, labels) for key, frame in zip(seg.keys, seg.frames)]
    known = sure if config.negatives == "co-occurring" else None
    data = TrainData(samples, report.identities, f"store:{store_path}", str(store_path), known)
    return data, report
