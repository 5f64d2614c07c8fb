"""Feature-level improvements that need no training: query expansion and track-level features.

A single crop is a noisy view of a person (pose, occlusion, blur); the tracker already knows which crops of one
camera show the same person, so averaging a crop's feature with its track's mean is the cheapest large gain a
video ReID system has. Averaging is done within one camera only (one pseudo-camera for MOT sequences): a track never
crosses cameras, so this uses nothing a deployed system would not have.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from reid_core.errors import InputError
from reid_core.evaluation.metrics import l2_normalise
from reid_core.groundtruth import match_boxes
from reid_core.types import Box, Track

MATCH_IOU = 0.5  # an evaluation crop belongs to the predicted track whose box overlaps it this much in its frame


def average_query_expansion(qf: np.ndarray, gf: np.ndarray, k: int) -> np.ndarray:
    """AQE (Chum et al. 2007): each query becomes the mean of itself and its k nearest gallery features."""
    if k < 0:
        raise InputError(f"query expansion k must be >= 0, got {k}")
    if k == 0:
        return qf
    qn, gn = l2_normalise(qf), l2_normalise(gf)
    k = min(k, len(gn))
    top = np.argpartition(-(qn @ gn.T), k - 1, axis=1)[:, :k]
    return l2_normalise(qn + gn[top].sum(axis=1))


def database_augmentation(gf: np.ndarray, k: int) -> np.ndarray:
    """DBA: the gallery-side twin of AQE (each gallery feature averaged with its k nearest gallery neighbours)."""
    if k <= 0:
        return gf
    gn = l2_normalise(gf)
    k = min(k + 1, len(gn))  # +1: the item itself is its own nearest neighbour
    top = np.argpartition(-(gn @ gn.T), k - 1, axis=1)[:, :k]
    return l2_normalise(gn[top].sum(axis=1))


def blend(own: np.ndarray, group_mean: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) * own + weight * group mean, both L2-normalised first; weight 1 replaces the crop's feature."""
    if not 0 <= weight <= 1:
        raise InputError(f"track weight must be in [0, 1], got {weight}")
    return l2_normalise((1 - weight) * l2_normalise(own) + weight * l2_normalise(group_mean))


def group_means(features: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per row, the L2-normalised mean feature of all rows sharing its group label."""
    labels, inverse = np.unique(groups, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    sums = np.zeros((len(labels), features.shape[1]), np.float64)
    np.add.at(sums, inverse, l2_normalise(features))
    return l2_normalise(sums.astype(np.float32))[inverse]


@dataclass(frozen=True)
class TrackAssignment:
    """Which predicted track each evaluation crop fell in (-1: no track box overlapped it enough)."""

    track_index: np.ndarray  # index into the track list, per crop
    matched: int
    total: int


def assign_to_tracks(frames: np.ndarray, boxes: list[Box], tracks: list[Track],
                     min_iou: float = MATCH_IOU) -> TrackAssignment:
    """One-to-one matching, frame by frame, of crops (0-based frames, boxes) to predicted track boxes."""
    by_frame: dict[int, list[tuple[int, Box]]] = defaultdict(list)
    for ti, t in enumerate(tracks):
        for f, b in zip(t.frames, t.boxes):
            by_frame[int(f)].append((ti, b))
    crops_by_frame: dict[int, list[int]] = defaultdict(list)
    for i, f in enumerate(frames):
        crops_by_frame[int(f)].append(i)
    out = np.full(len(boxes), -1, np.int64)
    for f, idx in crops_by_frame.items():
        preds = by_frame.get(f, [])
        for p, g in match_boxes([b for _, b in preds], [boxes[i] for i in idx], min_iou):
            out[idx[g]] = preds[p][0]
    matched = int((out >= 0).sum())
    return TrackAssignment(out, matched, len(boxes))
