"""Appearance-consistent segments: the unit of identity.

A tracker follows boxes; when two people cross, the boxes can swap and one track then holds two people. Whatever
is decided on such a track (enrolled, identified, used as a training label) is wrong for both. So every flow
decides on *segments*: a track cut wherever its appearance changes, each part decided on its own. This is the one
mechanism for that; enrollment, verify, identify, the gallery and the training pseudo-labels use it.

A cut is made where the crops before and after a point look least alike (cosine between the two sides' mean
features, the best point found by one cumulative-sum pass) and that cosine is below `change_similarity`; each side
is then examined again, so a track that switched twice is cut twice. Every side keeps at least `min_segment`
crops: a few odd crops (occlusion, a half-visible person) are left to the outlier checks, not cut off.

Pure numpy on features already in the store: nothing is re-embedded, and the same features always give the same
segments, on any machine.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reid_core.types import Track


@dataclass(frozen=True)
class SegmentConfig:
    # Below this cosine between the mean features of a track's two sides, they are different people. Measured on
    # PETS09-S2L1 with the default embedder (docs/identify.md, "Segments").
    change_similarity: float = 0.55
    min_segment: int = 6  # crops on each side of a cut


def _best_cut(feats: np.ndarray, min_segment: int) -> tuple[int, float]:
    """The index splitting `feats` (time order) into the two least alike sides, and the sides' cosine."""
    n = len(feats)
    if n < 2 * min_segment:
        return -1, 1.0
    csum = np.cumsum(feats.astype(np.float64), axis=0)
    left = csum[min_segment - 1:n - min_segment]  # sums of feats[:i] for i = min_segment .. n - min_segment
    right = csum[-1] - left
    cos = (left * right).sum(1) / np.maximum(np.linalg.norm(left, axis=1) * np.linalg.norm(right, axis=1), 1e-12)
    best = int(np.argmin(cos))
    return best + min_segment, float(cos[best])


def cut_points(feats: np.ndarray, config: SegmentConfig = SegmentConfig()) -> list[int]:
    """Sorted indices where a new segment starts (empty: one appearance throughout). `feats` in time order."""
    cuts: list[int] = []
    todo = [(0, len(feats))]
    while todo:
        lo, hi = todo.pop()
        at, sim = _best_cut(feats[lo:hi], config.min_segment)
        if at < 0 or sim >= config.change_similarity:
            continue
        cuts.append(lo + at)
        todo += [(lo, lo + at), (lo + at, hi)]
    return sorted(cuts)


def split_indices(n: int, cuts: list[int]) -> list[range]:
    edges = [0, *cuts, n]
    return [range(a, b) for a, b in zip(edges, edges[1:])]


def split_track(track: Track, feats: np.ndarray, config: SegmentConfig = SegmentConfig()) -> list[Track]:
    """The track's segments (the track itself when it holds one appearance). Segments keep the track id and are
    numbered by `segment` 1, 2, ... in time order (0 means a whole track); `feats` are the track's crop features in
    the track's order."""
    order = np.argsort(np.asarray(track.frames), kind="stable")
    parts = split_indices(len(order), cut_points(feats[order], config))
    if len(parts) == 1:
        return [track]
    out = []
    for i, part in enumerate(parts):
        idx = order[list(part)]
        out.append(Track(track.track_id, track.video_id, track.camera,
                         keys=[track.keys[j] for j in idx], frames=[track.frames[j] for j in idx],
                         boxes=[track.boxes[j] for j in idx], scores=[track.scores[j] for j in idx], segment=i + 1))
    return out
