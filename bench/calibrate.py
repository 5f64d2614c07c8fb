"""Default identity threshold from genuine/impostor score distributions on PETS09-S2L1, leave-one-person-out.

    .venv/bin/python bench/calibrate.py [--store bench/out/pets_full_store]

Ingests the whole clip once (one run, so no track is cut by a run boundary), maps every track to an actor (IoU 0.5
majority against gt.txt + persons.json) and scores track centroids against each other on the identify scale
(cosine of L2-normalised aggregated OSNet features):
  genuine  = two tracks of the same actor from *different visits* (different gt tracks: the re-identification case)
  impostor = two tracks of different actors.
Tracks under 10 crops are left out (they are not what people enroll or identify by).

Rule: the equal-error point (FRR = FAR) of the two distributions. So that the value is not fitted to this clip's
ten people, it is computed ten times, each time leaving one actor out of both distributions, and the held-out actor's
own genuine and impostor pairs are scored at that fold's threshold. The default is the median of the ten fold
thresholds, rounded to 0.05. Where the two distributions do not overlap the equal-error point is a whole interval,
and its middle is taken: a default on the edge of the impostor scores would flip with the CPU's rounding. Results go to
bench/out/calibration.json.
"""
from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from reid_core.groundtruth import load_mot_gt, load_persons, majority_gt_id
from reid_core.ingest import ingest
from reid_core.matching import track_feature
from reid_core.settings import Settings
from reid_core.stitching import video_tracks
from reid_core.store import Store

DEFAULT_THRESHOLD = Settings.from_env().threshold  # the embedder in use: its calibrated decision threshold

PETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pets09_s2l1"
OUT = Path(__file__).parent / "out"
GRID = np.linspace(0, 1, 1001)


def labelled_tracks(store: Store, min_crops: int = 10):
    gt, persons = load_mot_gt(PETS / "gt.txt"), load_persons(PETS / "persons.json")
    out = []
    segments = [s for v in store.videos() for s in video_tracks(store, v.video_id)]
    for t in segments:
        gid, _ = majority_gt_id(t, gt)
        if gid is not None and len(t) >= min_crops:
            out.append((t, gid, persons[gid]))
    return out


def pairs(tracks, feats):
    """[(score, genuine?, person a, person b)] over all track pairs except two tracks of the same visit."""
    out = []
    for (a, ga, pa), (b, gb, pb) in itertools.combinations(tracks, 2):
        if pa == pb and ga == gb:
            continue
        out.append((float(feats[a.label] @ feats[b.label]), pa == pb, pa, pb))
    return out


def eer_threshold(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """The equal-error point; where a whole interval of thresholds reaches it (the distributions do not overlap,
    or overlap on a plateau), its middle, so the default sits as far from both sides as the data allows instead of
    on the edge of one of them."""
    frr = np.array([(genuine < t).mean() for t in GRID])
    far = np.array([(impostor >= t).mean() for t in GRID])
    gap = np.abs(frr - far) + np.maximum(frr, far)  # equal and smallest errors
    best = np.flatnonzero(np.isclose(gap, gap.min()))
    return float(GRID[best].mean())


def stats(xs: np.ndarray) -> dict:
    return {"n": len(xs), "min": round(float(xs.min()), 3), "p5": round(float(np.percentile(xs, 5)), 3),
            "median": round(float(np.median(xs)), 3), "p95": round(float(np.percentile(xs, 95)), 3),
            "p99": round(float(np.percentile(xs, 99)), 3), "max": round(float(xs.max()), 3)}


def calibrate(tracks, feats) -> dict:
    ps = pairs(tracks, feats)
    people = sorted({p for _, _, p in tracks})
    genuine = np.array([s for s, g, _, _ in ps if g])
    impostor = np.array([s for s, g, _, _ in ps if not g])
    folds, held_g, held_i = [], [], []
    for person in people:
        train_g = np.array([s for s, g, a, b in ps if g and a != person])
        train_i = np.array([s for s, g, a, b in ps if not g and person not in (a, b)])
        t = eer_threshold(train_g, train_i)
        test_g = [s for s, g, a, b in ps if g and a == person]
        test_i = [s for s, g, a, b in ps if not g and person in (a, b)]
        held_g += [s >= t for s in test_g]
        held_i += [s >= t for s in test_i]
        folds.append({"held_out": person, "threshold": round(t, 3), "genuine_pairs": len(test_g),
                      "genuine_rejected": int(sum(s < t for s in test_g)), "impostor_pairs": len(test_i),
                      "impostors_accepted": int(sum(s >= t for s in test_i))})
    ts = np.array([f["threshold"] for f in folds])
    default = float(np.round(np.median(ts) * 20) / 20)
    return {"genuine": stats(genuine), "impostor": stats(impostor),
            "eer_threshold_all": round(eer_threshold(genuine, impostor), 3),
            "folds": folds, "fold_threshold_min": round(float(ts.min()), 3),
            "fold_threshold_median": round(float(np.median(ts)), 3), "fold_threshold_max": round(float(ts.max()), 3),
            "held_out_FRR": round(1 - float(np.mean(held_g)), 3), "held_out_FAR": round(float(np.mean(held_i)), 3),
            "default_rule": default,
            "at_default": {"genuine_accepted": round(float((genuine >= default).mean()), 3),
                           "impostors_accepted": round(float((impostor >= default).mean()), 3)},
            "impostor_p99": round(float(np.percentile(impostor, 99)), 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default=str(OUT / "pets_full_store"))
    args = ap.parse_args()
    store = Store(args.store)
    ingest(PETS / "vtest.avi", store, camera="pets")
    tracks = labelled_tracks(store)
    report = {"tracks": len(tracks), "people": len({p for _, _, p in tracks}),
              "threshold in reid_core.calibration": DEFAULT_THRESHOLD, "methods": {}}
    for method in ("mean", "quality"):
        feats = {t.label: track_feature(store, t, method) for t, _, _ in tracks}
        report["methods"][method] = calibrate(tracks, feats)
    OUT.mkdir(exist_ok=True)
    (OUT / "calibration.json").write_text(json.dumps(report, indent=1))
    print(f"{report['tracks']} tracks of {report['people']} actors")
    for method, r in report["methods"].items():
        print(f"\n[{method} aggregation]")
        for name in ("genuine", "impostor"):
            s = r[name]
            print(f"  {name:9s} pairs {s['n']:4d}: min {s['min']:.3f} p5 {s['p5']:.3f} median {s['median']:.3f} "
                  f"p95 {s['p95']:.3f} p99 {s['p99']:.3f} max {s['max']:.3f}")
        print(f"  EER point, all actors: {r['eer_threshold_all']:.3f}")
        print(f"  leave-one-actor-out EER thresholds: min {r['fold_threshold_min']:.3f} median "
              f"{r['fold_threshold_median']:.3f} max {r['fold_threshold_max']:.3f}; held-out FRR "
              f"{r['held_out_FRR']:.3f}, FAR {r['held_out_FAR']:.3f}")
        print(f"  rule (median fold threshold rounded to 0.05): {r['default_rule']:.2f} -> genuine accepted "
              f"{r['at_default']['genuine_accepted']:.3f}, "
              f"impostors accepted {r['at_default']['impostors_accepted']:.3f}")
    print(f"\ncalibrated threshold in reid_core/calibration.py: {DEFAULT_THRESHOLD}")


if __name__ == "__main__":
    main()
