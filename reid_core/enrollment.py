"""Enrollment: one click on a person -> the whole visit of that person, and nobody else.

The tracker fragments a visit (occlusions, a person lost for a few frames, a segment cut at an appearance change),
so the clicked segment alone is often a fifth of the visit. Enrollment takes the clicked segment and chains the
fragments that continue it, forwards and backwards in time: a fragment qualifies when it starts after the chain
ends (never at the same time: two boxes in one frame are two people), where the person could have walked to (box
centre within reach of the chain's last box, growing with the gap), and when it looks like the chain (cosine >=
the embedder's link similarity). The gap may be `SHORT_GAP_S`; up to `LONG_GAP_S` when the person vanished and
reappeared inside the picture (occluded or missed by the detector: a person standing behind another can go
undetected for seconds), never when the chain ended at the picture's edge (they walked out: the visit is over).
Ambiguity stops the chain: if two fragments qualify about equally,
or the fragment's own best predecessor is someone else's segment, the chain ends there rather than guess.

The enrolled crops are then checked against each other and against the gallery: crops far from the enrolled mean
are left out; a person who already matches another identity, a small enrollment, and a person who does not look
like the rest of the identity they are added to are reported (the last one is refused unless forced).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reid_core.errors import InputError, StoreError
from reid_core.ingest import Progress, ensure_ingested
from reid_core.matching import MIN_TRACK_CROPS, Gallery, identity_segments
from reid_core.names import validate_name, validate_new_name
from reid_core.sampling import track_features
from reid_core.settings import Settings, current
from reid_core.stitching import video_tracks
from reid_core.store import Store
from reid_core.types import Box, Identity, Track
from reid_core.vectors import l2_normalize
from reid_core.video import check_range, probe

SHORT_GAP_S = 2.0  # a fragment may start this long after the chain's last crop
LONG_GAP_S = 15.0  # ... or this long when neither end is at the picture's edge
EDGE = 0.03  # a box within this share of the frame's width/height of its border is "at the edge"
REACH_PER_S = 1.5  # box heights a person may move per second of gap (a brisk walk is ~1 body height/s)
AMBIGUOUS_MARGIN = 0.05  # two candidate continuations closer than this in cosine: stop rather than guess
MIN_ENROLL_CROPS = 10  # fewer enrolled crops than this is reported as "too little"


@dataclass
class EnrollResult:
    identity: Identity
    added_keys: list[str]
    track_ids: list[int]
    sample_keys: list[str]  # a strip of crops across the enrolled span, for people to check
    segments: list[str] = field(default_factory=list)  # track labels ("12", "12.2") chained into the visit
    frame_span: tuple[int, int] = (0, 0)
    visit_share: float = 0.0  # frames with an enrolled crop / frames of the visit's span
    left_out: list[str] = field(default_factory=list)  # crops refused as outliers
    warnings: list[str] = field(default_factory=list)


def _track_at(tracks: list[Track], frame: int, box: Box, max_offset: int = 0) -> Track | None:
    """The track under the click at `frame`; if nobody is tracked there at that very frame (a person entering the
    picture is detected a few frames later), the track that is there nearest in time, up to `max_offset` frames."""
    best, best_key = None, None
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    for t in tracks:
        near = [(abs(f - frame), f, b) for f, b in zip(t.frames, t.boxes) if abs(f - frame) <= max_offset]
        for offset, _, b in sorted(near, key=lambda n: n[0])[:1]:
            iou = b.iou(box) if box.w > 1 and box.h > 1 else (1.0 if b.contains(cx, cy) else 0.0)
            if iou >= 0.3 and (best_key is None or (offset, -iou) < best_key):
                best, best_key = t, (offset, -iou)
    return best


def parse_track(text: str) -> str:
    """A track label as people see it (Track.label): "12" for a whole track, "12.2" for a segment."""
    label = str(text).strip()
    if not re.fullmatch(r"\d+(\.[1-9]\d*)?", label):
        raise InputError(f"a track is picked by its number or segment label, e.g. 12 or 12.2; got {text!r}")
    return label


def _by_label(tracks: list[Track], label: str, from_frame: int, to_frame: int) -> Track:
    for t in tracks:
        if t.label == label:
            return t
    parts = [t.label for t in tracks if str(t.track_id) == label]
    if parts:  # a split track is two looks, possibly two people: which one is meant cannot be guessed
        raise StoreError(f"track {label} was split where its look changes (it may be two people): pick one of its "
                         f"segments, {', '.join(parts)}")
    labels = sorted({t.label for t in tracks}, key=lambda x: tuple(int(v) for v in x.split(".")))
    shown = ", ".join(labels[:60]) + (f" and {len(labels) - 60} more" if len(labels) > 60 else "")
    raise StoreError(f"no track {label} in frames {from_frame}..{to_frame}; the tracks there: {shown or 'none'}")


def pick_person(tracks: list[Track], from_frame: int, to_frame: int, at_frame: int | None = None,
                box: Box | None = None, fps: float = 25.0, track: str | None = None) -> Track:
    """The seed segment of an enrollment: the one with label `track`, the one under the click (at_frame, box), or
    the only person in the range."""
    if not tracks:
        raise StoreError(f"nobody was detected in frames {from_frame}..{to_frame}")
    if track is not None:
        return _by_label(tracks, parse_track(track), from_frame, to_frame)
    if at_frame is not None and box is not None:
        if not from_frame <= at_frame <= to_frame:
            raise InputError(f"the picked frame {at_frame} is outside the range {from_frame}..{to_frame}")
        picked = _track_at(tracks, at_frame, box) or _track_at(tracks, at_frame, box, int(SHORT_GAP_S * fps))
        if picked is None:
            people = [f"track {t.label} at {_xywh(b)}" for t in tracks if (b := t.box_at(at_frame))]
            raise StoreError(f"nobody tracked is at the picked point {int(box.x)},{int(box.y)} in frame {at_frame}; "
                             f"{len(people)} people are in that frame" + (f" ({'; '.join(people)}, boxes x,y,w,h)"
                                                                           if people else ""),
                             app_hint="click inside one of the boxes drawn on the preview",
                             cli_hint="give a --box that overlaps one of them, or --track N")
        return picked
    real = [t for t in tracks if len(t) >= MIN_TRACK_CROPS]
    if len(real) == 1:
        return real[0]
    listing = "; ".join(f"track {t.label}: frame {t.frames[0]} box {_xywh(t.boxes[0])}" for t in real[:12])
    raise StoreError(f"{len(real)} people are in frames {from_frame}..{to_frame}, so which one is meant must be "
                     f"picked. Candidates: {listing}",
                     cli_hint="pick one with --at-frame F --box x,y,w,h or --track N",
                     app_hint="click the person on the preview (at the Pick-at-frame frame)")


def _xywh(box: Box) -> str:
    return ",".join(str(int(round(v))) for v in box.as_list())


class _Visit:
    """Chains fragments onto a seed segment; `feats` gives a segment's (N, D) features."""

    def __init__(self, segments: list[Track], feats: dict[str, np.ndarray], fps: float, size: tuple[int, int],
                 link_similarity: float):
        self.segments, self.feats, self.fps, self.size = segments, feats, fps, size
        self.link_similarity = link_similarity
        self.means = {t.label: l2_normalize(feats[t.label].mean(0)) for t in segments}

    def _at_edge(self, box: Box) -> bool:
        w, h = self.size
        if not w or not h:
            return True  # unknown frame size: allow short gaps only
        return (box.x < EDGE * w or box.y < EDGE * h or box.x + box.w > (1 - EDGE) * w
                or box.y + box.h > (1 - EDGE) * h)

    def _near(self, a: Track, b: Track, forward: bool) -> bool:
        """b could continue a (forward) or precede it: in time and place."""
        gap = (b.frames[0] - a.frames[-1]) if forward else (a.frames[0] - b.frames[-1])
        pa = a.boxes[-1] if forward else a.boxes[0]
        pb = b.boxes[0] if forward else b.boxes[-1]
        inside = not self._at_edge(pa) and not self._at_edge(pb)
        if gap < 1 or gap > (LONG_GAP_S if inside else SHORT_GAP_S) * self.fps:
            return False
        dist = np.hypot(pa.x + pa.w / 2 - pb.x - pb.w / 2, pa.y + pa.h / 2 - pb.y - pb.h / 2)
        return dist <= pa.h * (0.5 + REACH_PER_S * gap / self.fps)

    def _start(self, t: Track, forward: bool) -> int:
        return t.frames[0] if forward else -t.frames[-1]

    def _step(self, chain: list[Track], forward: bool, taken: set[str]) -> Track | None:
        """The fragment that continues the chain (forward) or precedes it, or None: nothing qualifies, or it is
        ambiguous. The nearest qualifying fragment in time is taken (a later one would skip it); fragments at the
        same time as it are its alternatives (two people), and the best must win by a margin."""
        end = chain[-1] if forward else chain[0]
        chain_mean = l2_normalize(sum(self.feats[t.label].sum(0) for t in chain))
        cands = [(float(self.means[t.label] @ chain_mean), t) for t in self.segments
                 if t.label not in taken and self._near(end, t, forward)]
        cands = [c for c in cands if c[0] >= self.link_similarity]
        if not cands:
            return None
        first = min(cands, key=lambda c: self._start(c[1], forward))[1]
        span = set(first.frames)
        rivals = sorted((c for c in cands if span.intersection(c[1].frames)), key=lambda c: -c[0])
        if len(rivals) > 1 and rivals[1][0] >= rivals[0][0] - AMBIGUOUS_MARGIN:
            return None
        score, nxt = rivals[0]
        # Someone else seen between the chain's end and this fragment, who looks more like it, is the better
        # explanation of where the fragment came from.
        lo, hi = sorted((end.frames[-1] if forward else end.frames[0], nxt.frames[0] if forward else nxt.frames[-1]))
        for t in self.segments:
            if t.label in taken or t is nxt:
                continue
            edge = t.frames[-1] if forward else t.frames[0]
            if lo < edge < hi and self._near(t, nxt, forward) \
                    and float(self.means[t.label] @ self.means[nxt.label]) > score:
                return None
        return nxt

    def grow(self, seed: Track) -> list[Track]:
        chain = [seed]
        taken = {seed.label}
        for forward in (True, False):
            while (nxt := self._step(chain, forward, taken)) is not None:
                taken.add(nxt.label)
                if forward:
                    chain.append(nxt)
                else:
                    chain.insert(0, nxt)
        return chain


def enroll(store: Store, video: str | Path, name: str, from_frame: int = 0, to_frame: int | None = None,
           at_frame: int | None = None, box: Box | None = None, camera: str | None = None,
           progress: Progress | None = None, force: bool = False, track: str | None = None,
           settings: Settings | None = None) -> EnrollResult:
    """Make (or add to) identity `name` from the person picked at (at_frame, box), the stored track labelled
    `track` ("12", "12.2"), or the only person in the range: the picked segment extended to the whole visit.

    A track label only means something for footage already in the store, so picking by track ingests nothing:
    the range's stored tracks are the candidates."""
    settings = current(settings)
    calibration, threshold = settings.calibration, settings.threshold
    name = validate_name(name)  # before any work: a bad name must not cost an ingest
    if store.identity(name) is None:  # a new identity: reserved and look-alike names are refused up front too
        validate_new_name(name, [i.name for i in store.identities()])
    if track is not None:
        if at_frame is not None or box is not None:
            raise InputError("pick the person either by track or by frame and box, not both")
        track = parse_track(track)
        video_id, start, stop = _stored(store, video, from_frame, to_frame)
    else:
        video_id, start, stop = ensure_ingested(store, video, from_frame, to_frame, camera, progress,
                                                settings.ingest)
    segments = video_tracks(store, video_id, start, stop, settings)
    video_rec = store.video(video_id)
    fps = (video_rec.fps if video_rec else 0) or 25.0
    size = (video_rec.width, video_rec.height) if video_rec else (0, 0)
    seed = pick_person(segments, start, stop, at_frame, box, fps, track)
    feats = {t.label: track_features(store, t.keys, t.frames, t.track_id) for t in segments}
    chain = _Visit(segments, feats, fps, size, calibration.link_similarity).grow(seed)

    keys = [k for t in chain for k in t.keys]
    f = np.concatenate([feats[t.label] for t in chain])
    mean = l2_normalize(f.mean(0))
    keep = f @ mean >= calibration.outlier_similarity
    left_out = [k for k, ok in zip(keys, keep) if not ok]
    keys = [k for k, ok in zip(keys, keep) if ok]
    mean = l2_normalize(f[keep].mean(0))
    refused = set(left_out)
    frames = sorted({fr for t in chain for fr, k in zip(t.frames, t.keys) if k not in refused})

    warnings = []
    gallery = Gallery.load(store, settings=settings)
    scores = gallery.scores(mean)
    others = {n: s for n, s in scores.items() if n != name and s >= threshold}
    if others:
        best = max(others, key=others.__getitem__)
        warnings.append(f"this person already matches {best!r} (score {others[best]:.2f} >= threshold "
                        f"{threshold:.2f}): the same person twice, or two look-alikes")
    if name in scores and scores[name] < threshold:
        message = (f"this person does not look like the rest of {name!r} (score {scores[name]:.2f} < threshold "
                   f"{threshold:.2f})")
        if scores[name] < calibration.change_similarity and not force:
            raise StoreError(message + "; nothing was added",
                             cli_hint="enroll under another name, or pass --force if you are sure",
                             app_hint="enroll under another name, or tick \"Add even if it does not look like "
                                      "them\" if you are sure")
        warnings.append(message)
    if len(keys) < MIN_ENROLL_CROPS:
        warnings.append(f"only {len(keys)} crops enrolled: matching will be unreliable; enroll more footage "
                        f"of this person")
    ident = store.add_to_identity(name, keys)
    span = (frames[0], frames[-1])
    step = max(1, len(keys) // 8)
    return EnrollResult(ident, keys, sorted({t.track_id for t in chain}), keys[::step][:8],
                        [t.label for t in chain], span, len(frames) / (span[1] - span[0] + 1), left_out, warnings)


def _stored(store: Store, video: str | Path, from_frame: int, to_frame: int | None) -> tuple[str, int, int]:
    """The video's id and the part of the range that is in the store (for footage that must be there already):
    the range of a whole video whose first 200 frames are stored is those 200 frames."""
    info = probe(video)
    start, stop = check_range(info, from_frame, to_frame)
    runs = [r for r in store.runs(info.video_id) if r.status == "complete" and r.from_frame <= stop
            and r.to_frame >= start]
    if not runs:
        raise StoreError(f"frames {start}..{stop} of {Path(video).name} are not in the store yet, so they have no "
                         f"track numbers: ingest them first (reid ingest), or pick the person by frame and box")
    return info.video_id, max(start, min(r.from_frame for r in runs)), min(stop, max(r.to_frame for r in runs))


def remove_from_identity(store: Store, name: str, items: list[str]) -> tuple[Identity, int]:
    """Take wrong crops or segments out of an identity: each item is a crop key, a segment label as listed by
    `identity_segments` ("12.2"), or a track number (all its segments). The crops stay in the store."""
    ident = store.identity(name)
    if ident is None:
        raise StoreError(f"no identity named {name!r}")
    by_label = {t.label: t.keys for t, _ in identity_segments(store, ident)}
    drop: set[str] = set()
    for item in (i.strip() for i in items if i.strip()):
        track_part = [keys for label, keys in by_label.items() if label.split(".")[0] == item]
        if item in by_label:
            drop.update(by_label[item])
        elif item in ident.keys:
            drop.add(item)
        elif track_part:
            drop.update(k for keys in track_part for k in keys)
        else:
            raise InputError(f"{item!r} is neither a crop key nor a segment of {ident.name!r} "
                             f"(its segments: {', '.join(by_label) or 'none'})")
    return store.remove_from_identity(ident.name, sorted(drop)), len(drop)
