"""Tracks of a video as decisions see them: parts cut by an ingest-run boundary joined again, then cut into
appearance segments (reid_core/segments.py)."""
from __future__ import annotations

import numpy as np

from reid_core.sampling import track_features
from reid_core.segments import split_track
from reid_core.settings import Settings, current
from reid_core.store import Store
from reid_core.types import Track
from reid_core.vectors import l2_normalize

# Joining a person's track across the boundary of two adjacent ingest runs (each run starts a fresh tracker):
STITCH_GAP = 2  # frames a track may end before its run ends / start after the next run starts
STITCH_IOU = 0.3  # last box of one part vs first box of the next


def video_tracks(store: Store, video_id: str, from_frame: int | None = None, to_frame: int | None = None,
                 settings: Settings | None = None) -> list[Track]:
    """The video's person segments in a range: tracks cut by an ingest-run boundary joined again, then every
    track cut where its appearance changes (reid_core/segments.py), so a track that switched people is decided
    part by part.

    Every ingest run starts a fresh tracker, so footage ingested as several ranges (an enrollment range first, the
    rest later) would otherwise split a person at each boundary into short parts that match poorly. A track ending
    at a run's last frame is joined to a track starting at the adjacent run's first frame when their boxes overlap
    (IoU >= STITCH_IOU) and they look alike (cosine >= the tracker's own appearance gate for the embedder),
    one-to-one (Hungarian). A joined track keeps the id of its first part."""
    settings = current(settings)
    segments = []
    for t in _joined_tracks(store, video_id, from_frame, to_frame, settings.ingest.tracker.appearance_gate):
        segments += split_track(t, track_features(store, t.keys, t.frames, t.track_id), settings.segments)
    return sorted(segments, key=lambda t: (t.frames[0], t.track_id, t.segment))


def _joined_tracks(store: Store, video_id: str, from_frame: int | None, to_frame: int | None,
                   gate: float) -> list[Track]:
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
            feats[t.track_id] = l2_normalize(track_features(store, t.keys, t.frames, t.track_id).mean(axis=0))
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
            ok = (ious >= STITCH_IOU) & (cos >= gate)
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
