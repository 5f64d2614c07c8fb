"""A real two-camera clip from PETS09-S2L1, and what camera timing learned without labels gains on it.

    .venv/bin/python bench/pets_two_camera.py [--to-frame 794] [--out DIR] [--json bench/out/pets_two_camera.json]

The clip: two non-overlapping crops of every frame, x 0-319 ("left") and x 448-767 ("right"), 128 px between them
that neither sees, written as two videos on one clock (the same start time, the source's frame rate). People
walking from one view to the other give real camera transitions; the gt boxes are shifted into each crop, clipped
to it, and kept where at least half of a box's width is inside. Files go to a cache folder (never the repository).

The measurement: both videos are ingested with the default settings and --start; the store's st model is learned
from its own confident cross-camera matches (`reid st learn`, no labels); then every track of one camera that gt
maps to an actor (persons.json) queries the tracks of the other camera: R1 and mAP by the plain cosine vs the
st-adjusted one; once with the track's mean feature as the query, once with its middle crop alone (what a photo of
the person gives; the gallery stays whole tracks). Labels only score; they never train or tune anything.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from reid_core.groundtruth import GtFrames, load_mot_gt, load_persons, majority_gt_id
from reid_core.types import Box
from reid_core.video import read_frames

PETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pets09_s2l1"
OUT = Path(__file__).parent / "out"
LEFT, RIGHT = (0, 320), (448, 768)  # x ranges of the two views
START = "2009-06-01T12:00:00Z"  # any one instant: what matters is that both views share it
MIN_VISIBLE = 0.5
UNLABELLED = 1000


@dataclass(frozen=True)
class View:
    camera: str
    video: Path
    gt: GtFrames  # 0-based frame -> [(gt id, box in the view's pixels)]


def cut_gt(gt: GtFrames, x0: int, x1: int, min_visible: float = MIN_VISIBLE) -> GtFrames:
    """gt boxes moved into the view x0..x1 (clipped to it); boxes with less than min_visible of their width inside
    are dropped."""
    out: GtFrames = {}
    for frame, boxes in gt.items():
        kept = []
        for gid, b in boxes:
            a, z = max(b.x, x0), min(b.x + b.w, x1)
            if b.w > 0 and (z - a) / b.w >= min_visible:
                kept.append((gid, Box(a - x0, b.y, z - a, b.h)))
        if kept:
            out[frame] = kept
    return out


def write_gt(gt: GtFrames, path: Path) -> Path:
    """MOTChallenge rows (1-based frames), so the view's gt can be read like any other."""
    rows = [f"{f + 1},{gid},{b.x:.2f},{b.y:.2f},{b.w:.2f},{b.h:.2f},1,-1,-1,-1"
            for f in sorted(gt) for gid, b in gt[f]]
    path.write_text("\n".join(rows) + "\n")
    return path


def make_clips(out_dir: Path, to_frame: int | None = None, source: Path = PETS / "vtest.avi",
               gt_path: Path = PETS / "gt.txt") -> list[View]:
    """The two views of frames 0..to_frame as MJPG .avi files plus their gt (kept when already made)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    gt = load_mot_gt(gt_path)
    last = to_frame if to_frame is not None else max(gt)
    views = []
    for name, (x0, x1) in (("left", LEFT), ("right", RIGHT)):
        video = out_dir / f"pets_{name}_{last}.avi"
        view_gt = {f: b for f, b in cut_gt(gt, x0, x1).items() if f <= last}
        write_gt(view_gt, out_dir / f"pets_{name}_{last}_gt.txt")
        views.append(View(f"pets-{name}", video, view_gt))
    if all(v.video.is_file() and v.video.stat().st_size > 0 for v in views):
        return views
    fps = cv2.VideoCapture(str(source)).get(cv2.CAP_PROP_FPS) or 10.0
    writers = [cv2.VideoWriter(str(v.video) + ".tmp.avi", cv2.VideoWriter.fourcc(*"MJPG"), fps, (x1 - x0, 576))
               for v, (x0, x1) in zip(views, (LEFT, RIGHT))]
    try:
        for _, frame in read_frames(source, 0, last):
            for w, (x0, x1) in zip(writers, (LEFT, RIGHT)):
                w.write(np.ascontiguousarray(frame[:, x0:x1]))
    finally:
        for w in writers:
            w.release()
    for v in views:
        Path(str(v.video) + ".tmp.avi").replace(v.video)  # a killed run never leaves a half clip under the name
    return views


def cross_camera_ranking(store, views: list[View], model, settings) -> dict:
    """R1 / mAP of actor-labelled tracks of one view against the other view's tracks: cosine vs st-adjusted."""
    from reid_core.evaluation.metrics import evaluate_rank
    from reid_core.matching import MIN_TRACK_CROPS, track_feature
    from reid_core.st_store import span
    from reid_core.stitching import video_tracks
    from reid_core.video import probe

    actor_of = load_persons(PETS / "persons.json")
    actors = sorted(set(actor_of.values()))
    feats, singles, spans, pids, cams = [], [], [], [], []
    for cam_index, v in enumerate(views):
        vid = probe(v.video).video_id
        record = store.video(vid)
        for t in video_tracks(store, vid, settings=settings):
            if len(t) < MIN_TRACK_CROPS:
                continue
            gid, share = majority_gt_id(t, v.gt)
            actor = actor_of.get(gid) if gid is not None else None
            feats.append(track_feature(store, t))
            own, present = store.features_where(t.keys)
            rows = np.flatnonzero(present)
            singles.append(own[rows[len(rows) // 2]] if len(rows) else feats[-1])  # one crop, as a photo would be
            spans.append(span(record, t.camera, t.frames[0], t.frames[-1]))
            # an unlabelled track is a distractor of its own, never anyone's match
            pids.append(actors.index(actor) if actor is not None and share >= 0.5 else UNLABELLED + len(pids))
            cams.append(cam_index)
    f, one = np.stack(feats), np.stack(singles)
    one = one / np.linalg.norm(one, axis=1, keepdims=True)
    pid, cam = np.array(pids), np.array(cams)
    from reid_core.spacetime import st_matrix

    p = st_matrix(model, spans, spans)
    track_sims, crop_sims = f @ f.T, one @ f.T  # crop queries: the middle crop of a track against whole tracks
    out = {"tracks": len(feats), "labelled": int((pid < UNLABELLED).sum())}
    for name, s in (("visual", track_sims), ("st", model.adjust_matrix(track_sims, p)),
                    ("crop_visual", crop_sims), ("crop_st", model.adjust_matrix(crop_sims, p))):
        rows = []
        for q in range(2):
            qi = np.flatnonzero((cam == q) & (pid < UNLABELLED))
            gi = np.flatnonzero(cam != q)
            r = evaluate_rank(-s[np.ix_(qi, gi)], pid[qi], pid[gi], cam[qi], cam[gi], max_rank=5)
            rows.append((r.rank(1) * r.num_evaluated, r.mAP * r.num_evaluated, r.num_evaluated))
        n = sum(x[2] for x in rows)
        out[name] = {"r1": round(sum(x[0] for x in rows) / n, 4), "mAP": round(sum(x[1] for x in rows) / n, 4),
                     "queries": n}
    return out


def run(out_dir: Path, to_frame: int | None, store_dir: Path | None = None) -> dict:
    from reid_core.ingest import ingest
    from reid_core.settings import Settings
    from reid_core.st_learn import learn_from_store
    from reid_core.store import Store

    views = make_clips(out_dir, to_frame)
    store_dir = store_dir or Path(tempfile.mkdtemp(prefix="pets2cam_"))
    settings = Settings.from_env(store=store_dir)
    store = Store(store_dir)
    for v in views:
        ingest(v.video, store, camera=v.camera, settings=settings.ingest, start_time=START)
    fit = learn_from_store(store, settings)
    result = {"to_frame": to_frame, "store": str(store_dir), "st_pairs": fit.pairs, "st_sightings": fit.sightings,
              "st_rounds": fit.rounds, "transitions": {f"{a}->{b}": n for (a, b), n in fit.model.counts.items()},
              "p_ref": fit.model.p_ref, **cross_camera_ranking(store, views, fit.model, settings)}
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--to-frame", type=int, default=None, help="last frame of the clip (default: the whole video)")
    ap.add_argument("--out", type=Path, default=None, help="folder for the clips (default: the cache)")
    ap.add_argument("--store", type=Path, default=None, help="store folder (default: a fresh temporary one)")
    ap.add_argument("--json", type=Path, default=OUT / "pets_two_camera.json")
    a = ap.parse_args(argv)
    if a.out is None:
        from reid_core import offline

        a.out = offline.cache_dir() / "pets_two_camera"
    r = run(a.out, a.to_frame, a.store)
    print(f"PETS two-camera clip (frames 0..{a.to_frame if a.to_frame is not None else 'end'}): {r['tracks']} "
          f"tracks, {r['labelled']} labelled; st learned without labels from {r['st_pairs']} confident matches "
          f"({r['transitions']})")
    for name in ("visual", "st", "crop_visual", "crop_st"):
        print(f"  {name:11s} cross-camera R1 {r[name]['r1']:.3f} mAP {r[name]['mAP']:.3f} ({r[name]['queries']} "
              f"queries)")
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
