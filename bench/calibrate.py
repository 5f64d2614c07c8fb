"""Default identity threshold from genuine/impostor score distributions on PETS09-S2L1.

    .venv/bin/python bench/calibrate.py [--store bench/out/pets_full_store]

Ingests the whole clip (once), maps every track to an actor (IoU 0.5 majority against gt.txt + persons.json),
and scores track centroids against each other on the identify scale (cosine of mean features):
genuine = two tracks of the same actor from *different visits* (different gt tracks: the re-identification case),
impostor = tracks of different actors. Tracks under 10 crops are left out (they are not what people enroll).
The threshold is the equal-error point of the two distributions, rounded down to 0.05: a rule, not a value
searched for the best DIR on this clip.
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from reid_core.groundtruth import load_mot_gt, load_persons, majority_gt_id
from reid_core.ingest import ingest
from reid_core.matching import track_feature
from reid_core.store import Store

PETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pets09_s2l1"


def labelled_tracks(store: Store, min_crops: int = 10):
    gt, persons = load_mot_gt(PETS / "gt.txt"), load_persons(PETS / "persons.json")
    out = []
    for t in store.tracks():
        gid, purity = majority_gt_id(t, gt)
        if gid is not None and len(t) >= min_crops:
            out.append((t, gid, persons[gid]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default=str(Path(__file__).parent / "out" / "pets_full_store"))
    ap.add_argument("--method", default="mean")
    args = ap.parse_args()
    store = Store(args.store)
    ingest(PETS / "vtest.avi", store, camera="pets")
    tracks = labelled_tracks(store)
    feats = {t.track_id: track_feature(store, t, args.method) for t, _, _ in tracks}
    genuine, impostor = [], []
    for (a, ga, pa), (b, gb, pb) in itertools.combinations(tracks, 2):
        s = float(feats[a.track_id] @ feats[b.track_id])
        if pa == pb and ga != gb:
            genuine.append(s)
        elif pa != pb:
            impostor.append(s)
    genuine, impostor = np.array(genuine), np.array(impostor)
    grid = np.linspace(0, 1, 1001)
    frr = np.array([(genuine < t).mean() for t in grid])
    far = np.array([(impostor >= t).mean() for t in grid])
    eer_t = grid[np.argmin(np.abs(frr - far))]
    print(f"tracks {len(tracks)}  genuine pairs {len(genuine)}  impostor pairs {len(impostor)}  ({args.method})")
    for name, xs in (("genuine", genuine), ("impostor", impostor)):
        print(f"{name:9s} min {xs.min():.3f}  p5 {np.percentile(xs, 5):.3f}  median {np.median(xs):.3f}  "
              f"p95 {np.percentile(xs, 95):.3f}  max {xs.max():.3f}")
    print(f"EER point {eer_t:.3f}: FRR {frr[np.argmin(np.abs(frr - far))]:.3f} FAR {far[np.argmin(np.abs(frr - far))]:.3f}")
    for t in (0.70, 0.75, 0.80, 0.85):
        print(f"threshold {t:.2f}: genuine accepted {(genuine >= t).mean():.3f}  impostors accepted "
              f"{(impostor >= t).mean():.3f}")
    print(f"default threshold (EER point rounded down to 0.05): {np.floor(eer_t * 20) / 20:.2f}")


if __name__ == "__main__":
    main()
