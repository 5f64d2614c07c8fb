"""Which crops get a feature at ingest, and how flows read the crops that did not.

Embedding every crop was half of the ingest's CPU time with the default embedder, and most of those features say
what the previous crop already said: a person walking alone is the same person from one frame to the next, which
the boxes alone prove. So with `feature_every` = S > 1 the ingest embeds
  - every detection where association is ambiguous: a box overlapping another box (people crossing or passing),
    a box with no unique predecessor in the previous processed frame (a new or re-found person, a jump), a box whose
    predecessor has several successors (a split), a box whose colours changed from its predecessor's (a shot
    change, someone else at the same place);
  - one crop per S processed frames of each unambiguous chain of boxes (the best one: detector score x size), so a
    track's appearance is sampled a few times a second, and at least one crop of every track in every chunk.
The tracker's appearance gate then applies wherever both sides have a feature, which is everywhere a swap could
happen. Every crop is still stored (JPEG, box, frame); a crop without a feature is marked so in its metadata.

Flows that need a feature for every crop of a track (means, appearance segments) read them through
`track_features`: a crop without a feature takes the feature of its track's nearest sampled crop in time. Inside an
unambiguous chain that is the same person by construction, and every ambiguous crop has its own feature, so a
segment cut still falls where the appearance changes (to within S frames). Search by image only ranks crops that
have their own feature. Measured cost in accuracy: docs/ingest.md.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from reid_core.errors import StoreError
from reid_core.types import Detection, iou_matrix

LINK_IOU = 0.5  # a box continues the previous frame's box when their IoU is at least this ...
CANDIDATE_IOU = 0.1  # ... and no other box of either frame overlaps it by this much
# A confident box is "near" another when they overlap at all, or a weak box (which the tracker matches by IoU
# only, in its second stage) covers it this much: IoU association can only swap boxes that overlap a
# prediction, and predictions move a few pixels per frame.
WEAK_NEAR_IOU = 0.3
# A box also breaks its chain when its look changed: the mean absolute difference of 8x4 colour thumbnails
# (0..1) of the two boxes above this. Shot changes and a person replaced by another at the same place move no box.
# On PETS09-S2L1 (every 2nd frame) 99% of unambiguous links differ by less than 0.21; two random people's
# thumbnails by 0.19 at the median.
SIGNATURE_CHANGE = 0.2
SIGNATURE_SIZE = (4, 8)  # width, height


def signature(patch_bgr: np.ndarray) -> np.ndarray:
    """A crop's colour thumbnail: what `needs_feature` compares between frames."""
    import cv2

    return cv2.resize(patch_bgr, SIGNATURE_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32).ravel() / 255.0


def quality(d: Detection) -> float:
    """How good a crop is for appearance: confident and tall (small, uncertain boxes say less)."""
    return d.score * min(1.0, d.box.h / 128.0)


@dataclass
class ChainState:
    """What the choice for the next chunk needs from the last one: the boxes of the last processed frame. Rebuilt
    on resume from the replay data, so a resumed ingest chooses exactly what a clean one did."""

    previous: list[Detection] = field(default_factory=list)
    signatures: np.ndarray | None = None  # of `previous`; None: unknown (every link there counts as changed)


def needs_feature(frames: Sequence[list[Detection]], signatures: Sequence[np.ndarray], state: ChainState,
                  strong: float, every: int) -> list[list[bool]]:
    """Per processed frame of a chunk, per detection: embed it before tracking? Only confident detections (score >=
    `strong`, the tracker's first-association threshold) are considered; weak boxes are matched by IoU alone.
    `signatures`: per frame, one `signature` row per detection."""
    if every <= 1:
        out = [[d.score >= strong for d in dets] for dets in frames]
        if frames:
            state.previous, state.signatures = list(frames[-1]), signatures[-1]
        return out
    out = []
    chain_of: list[int] = []  # chain id of each detection of the previous frame (-1: no chain)
    prev, prev_sigs = state.previous, state.signatures
    prev_chain = [-1] * len(prev)
    chains: dict[int, list[tuple[int, int, float]]] = {}  # chain id -> (frame index, det index, quality)
    next_chain = 0
    for fi, (dets, sigs) in enumerate(zip(frames, signatures)):
        flags = [False] * len(dets)
        chain_of = [-1] * len(dets)
        boxes = [d.box for d in dets]
        same = iou_matrix(boxes, boxes)
        np.fill_diagonal(same, 0.0)
        confident = np.array([d.score >= strong for d in dets], bool)
        link = iou_matrix(boxes, [d.box for d in prev])
        for i, d in enumerate(dets):
            if d.score < strong:
                continue
            near = bool(((same[i] > 0) & confident).any() or ((same[i] > WEAK_NEAR_IOU) & ~confident).any())
            cands = np.flatnonzero(link[i] >= CANDIDATE_IOU) if link.size else np.zeros(0, int)
            unique = len(cands) == 1 and link[i, cands[0]] >= LINK_IOU \
                and int((link[:, cands[0]] >= CANDIDATE_IOU).sum()) == 1
            changed = unique and (prev_sigs is None or len(prev_sigs) != len(prev)
                                  or float(np.abs(sigs[i] - prev_sigs[cands[0]]).mean()) > SIGNATURE_CHANGE)
            if near or not unique or changed:
                flags[i] = True  # ambiguous: the tracker's gate needs it
                continue
            c = prev_chain[cands[0]]
            if c < 0:
                c, next_chain = next_chain, next_chain + 1
            chain_of[i] = c
            chains.setdefault(c, []).append((fi, i, quality(d)))
        out.append(flags)
        prev, prev_chain, prev_sigs = dets, chain_of, sigs
    for members in chains.values():  # one crop per `every` frames of each chain: the best of each window
        members.sort()
        start = members[0][0]
        windows: dict[int, tuple[int, int, float]] = {}
        for fi, i, q in members:
            w = (fi - start) // every
            if w not in windows or q > windows[w][2]:
                windows[w] = (fi, i, q)
        for fi, i, _ in windows.values():
            out[fi][i] = True
    if frames:
        state.previous, state.signatures = list(frames[-1]), signatures[-1]
    return out


def fill(feats: np.ndarray, present: np.ndarray, frames: Sequence[int]) -> np.ndarray:
    """Rows without a feature take the nearest present row's in frame order (the earlier one on a tie)."""
    if present.all():
        return feats
    if not present.any():
        raise ValueError("no row has a feature")
    fr = np.asarray(frames)
    have = np.flatnonzero(present)
    dist = np.abs(fr[:, None] - fr[have][None, :])
    nearest = have[np.argmin(dist, axis=1)]  # argmin takes the first: have is in row order
    return feats[nearest]


def track_features(store, keys: Sequence[str], frames: Sequence[int], track_id: int | None = None) -> np.ndarray:
    """A feature for every one of a track's crops (`keys`, `frames` in any order): stored ones as they are, the
    sampled-out ones from the track's nearest sampled crop. When none of `keys` has a feature (a track cut to a
    short range), the nearest ones of the whole stored track (`track_id`) are used."""
    feats, present = store.features_where(keys)
    if present.all() or not len(keys):
        return feats
    if present.any():
        return fill(feats, present, frames)
    whole = store.track_keys(track_id) if track_id is not None else []
    wf, wp = store.features_where(whole)
    if not wp.any():
        raise StoreError(f"no crop of track {track_id} has a feature: re-ingest that footage")
    wframes = [int(k.rsplit("/", 1)[1].split("_")[0]) for k in whole]
    near = [int(np.flatnonzero(wp)[np.argmin(np.abs(np.asarray(wframes)[wp] - f))]) for f in frames]
    return wf[near]
