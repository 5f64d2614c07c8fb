"""MOTChallenge ground truth: reading gt.txt/persons.json and matching predicted boxes and tracks to it.

Used by tests, benchmarks and evaluation to score detection, tracking and identification on annotated footage.
Frames here are 0-based decoded indices (gt.txt frame N is decoded frame N-1).
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from reid_core.errors import InputError
from reid_core.types import Box, Track, iou_matrix

__all__ = ["GtBox", "GtFrames", "gt_ids_of_track", "idf1", "iou_matrix", "load_mot_gt", "load_persons",
           "majority_gt_id", "match_boxes", "read_gt"]

GtFrames = dict[int, list[tuple[int, Box]]]  # frame -> [(gt id, box)]


@dataclass(frozen=True)
class GtBox:
    frame: int  # 1-based, as in gt.txt
    track: int
    box: Box


def read_gt(path: str | Path, min_visibility: float = 0.0) -> tuple[list[GtBox], int]:
    """Person boxes of a MOTChallenge gt.txt in file order, and how many rows were left out: ignore rows (conf 0),
    other classes, and boxes less visible than `min_visibility`.

    MOT16+ gt marks rows to ignore with conf 0 and gives a class in column 8 (1 = pedestrian) and the visible
    fraction in column 9; MOT15 files (like PETS09-S2L1) put world coordinates there instead (-1 when unknown), so
    the class is only read when the column holds integers 1..12 and a negative visibility counts as fully visible.
    """
    try:
        raw = np.loadtxt(path, delimiter=",", ndmin=2)
    except ValueError as e:
        raise InputError(f"{path}: not a MOTChallenge gt file (frame,id,left,top,width,height,...): {e}") from e
    if raw.size == 0:
        raise InputError(f"{path}: the ground truth is empty")
    if raw.shape[1] < 6:
        raise InputError(f"{path}: expected at least 6 comma-separated columns, got {raw.shape[1]}")
    keep = np.ones(len(raw), bool)
    if raw.shape[1] >= 7:
        keep &= raw[:, 6] != 0
    if raw.shape[1] >= 9:
        cls = raw[:, 7]
        if np.all(cls == np.round(cls)) and np.all((cls >= 1) & (cls <= 12)):
            keep &= cls == 1
        keep &= np.where(raw[:, 8] >= 0, raw[:, 8], 1.0) >= min_visibility
    rows = raw[keep]
    boxes = [GtBox(int(r[0]), int(r[1]), Box(float(r[2]), float(r[3]), float(r[4]), float(r[5]))) for r in rows]
    return boxes, int((~keep).sum())


def load_mot_gt(path: str | Path, min_visibility: float = 0.0) -> GtFrames:
    """read_gt's boxes by 0-based decoded frame."""
    out: GtFrames = defaultdict(list)
    for g in read_gt(path, min_visibility)[0]:
        out[g.frame - 1].append((g.track, g.box))
    return dict(out)


def load_persons(path: str | Path) -> dict[int, str]:
    """persons.json ({"persons": {name: [gt track ids]}}) -> {gt track id: person name}."""
    path = Path(path)
    try:
        persons = json.loads(path.read_text())["persons"]
        out: dict[int, str] = {}
        for name, tracks in persons.items():
            for t in tracks:
                if int(t) in out:
                    raise InputError(f"{path}: track {t} is listed under both {out[int(t)]!r} and {name!r}")
                out[int(t)] = str(name)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: expected {{\"persons\": {{\"name\": [track ids]}}}}: {e}") from e
    return out


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


def idf1(tracks: list[Track], gt: GtFrames, frames: range, min_iou: float = 0.5) -> float:
    """IDF1 (motmetrics: identity-preserving F1 over every gt and predicted box) of `tracks` in `frames`, each
    Track (or segment: track id and segment number) one predicted identity."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=False)
    by_frame: dict[int, list[tuple[str, Box]]] = defaultdict(list)
    for t in tracks:
        for f, b in zip(t.frames, t.boxes):
            by_frame[f].append((t.label, b))
    for f in frames:
        truth, pred = gt.get(f, []), by_frame.get(f, [])
        dist = 1.0 - iou_matrix([b for _, b in truth], [b for _, b in pred])
        dist[dist > 1.0 - min_iou] = np.nan
        acc.update([i for i, _ in truth], [label for label, _ in pred], dist, frameid=f)
    summary = mm.metrics.create().compute(acc, metrics=["idf1"], name="run")
    return float(summary["idf1"].iloc[0])
