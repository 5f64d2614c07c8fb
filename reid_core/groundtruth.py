"""MOTChallenge ground truth: reading gt.txt/persons.json and matching predicted boxes and tracks to it.

Used by tests, benchmarks and evaluation to score detection, tracking and identification on annotated footage.
Frames here are 0-based decoded indices (gt.txt frame N is decoded frame N-1).
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from reid_core.types import Box, Track

GtFrames = dict[int, list[tuple[int, Box]]]  # frame -> [(gt id, box)]


def load_mot_gt(path: str | Path, min_visibility: float = 0.0) -> GtFrames:
    out: GtFrames = defaultdict(list)
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        parts = line.split(",")
        frame, gid = int(float(parts[0])) - 1, int(float(parts[1]))
        x, y, w, h = (float(v) for v in parts[2:6])
        conf = float(parts[6]) if len(parts) > 6 else 1.0
        vis = float(parts[8]) if len(parts) > 8 and float(parts[8]) >= 0 else 1.0
        if conf == 0 or vis < min_visibility:  # MOT17-style "ignore" rows
            continue
        out[frame].append((gid, Box(x, y, w, h)))
    return dict(out)


def load_persons(path: str | Path) -> dict[int, str]:
    """persons.json -> {gt track id: person name}."""
    persons = json.loads(Path(path).read_text())["persons"]
    return {int(t): name for name, tracks in persons.items() for t in tracks}


def iou_matrix(a: list[Box], b: list[Box]) -> np.ndarray:
    if not a or not b:
        return np.zeros((len(a), len(b)))
    A = np.array([x.xyxy for x in a])
    B = np.array([x.xyxy for x in b])
    iw = np.clip(np.minimum(A[:, None, 2], B[None, :, 2]) - np.maximum(A[:, None, 0], B[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(A[:, None, 3], B[None, :, 3]) - np.maximum(A[:, None, 1], B[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (A[:, 2] - A[:, 0]) * (A[:, 3] - A[:, 1])
    area_b = (B[:, 2] - B[:, 0]) * (B[:, 3] - B[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def match_boxes(pred: list[Box], gt: list[Box], min_iou: float = 0.5) -> list[tuple[int, int]]:
    """One-to-one (pred index, gt index) pairs with IoU >= min_iou, maximising total IoU."""
    ious = iou_matrix(pred, gt)
    if ious.size == 0:
        return []
    rows, cols = linear_sum_assignment(-ious)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if ious[r, c] >= min_iou]


def gt_ids_of_track(track: Track, gt: GtFrames, min_iou: float = 0.5) -> list[int | None]:
    """For each box of the track, the gt id it overlaps best (IoU >= min_iou), else None."""
    out: list[int | None] = []
    for frame, box in zip(track.frames, track.boxes):
        cands = gt.get(frame, [])
        ious = iou_matrix([box], [b for _, b in cands])
        if ious.size and ious.max() >= min_iou:
            out.append(cands[int(ious.argmax())][0])
        else:
            out.append(None)
    return out


def majority_gt_id(track: Track, gt: GtFrames, min_iou: float = 0.5) -> tuple[int | None, float]:
    """(majority gt id, fraction of the track's boxes that carry it); (None, 0) if no box matches any gt."""
    ids = gt_ids_of_track(track, gt, min_iou)
    counts = Counter(i for i in ids if i is not None)
    if not counts:
        return None, 0.0
    gid, n = counts.most_common(1)[0]
    return gid, n / len(ids)
