"""Open-set identification on PETS09-S2L1 (the issue's protocol).

    .venv/bin/python bench/openset.py [--aggregate mean|quality] [--store DIR]

Enroll p01, p03, p05, p07 (actors with several visits) from their first visit: that gt track's frame span, the
person picked by its gt box at the first frame. Everyone else is a stranger. Identify runs once over the whole
video; output tracks are mapped to gt track ids (IoU 0.5, majority) and tracks of an enrollment visit are ignored.
DIR = later-visit tracks of enrolled actors named correctly; FAR = stranger tracks given any name.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from reid_core.groundtruth import load_mot_gt, load_persons, majority_gt_id
from reid_core.matching import DEFAULT_THRESHOLD, enroll, identify
from reid_core.store import Store

PETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pets09_s2l1"
ENROLLED = ("p01", "p03", "p05", "p07")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--aggregate", default="mean")
    ap.add_argument("--store", default=None)
    ap.add_argument("--plot", default=str(Path(__file__).parent / "out" / "dir_far.png"))
    args = ap.parse_args()
    gt, persons = load_mot_gt(PETS / "gt.txt"), load_persons(PETS / "persons.json")
    spans: dict[int, list[int]] = {}
    for frame, rows in gt.items():
        for gid, _ in rows:
            spans.setdefault(gid, []).append(frame)
    store = Store(args.store or tempfile.mkdtemp(prefix="openset-"))
    enrol_gids = set()
    for person in ENROLLED:
        gids = [g for g, p in persons.items() if p == person]
        first = min(gids, key=lambda g: min(spans[g]))
        enrol_gids.add(first)
        a, b = min(spans[first]), max(spans[first])
        box = next(bx for g, bx in gt[a] if g == first)
        enroll(store, PETS / "vtest.avi", person, a, b, at_frame=a, box=box)
    decisions = identify(store, PETS / "vtest.avi", threshold=DEFAULT_THRESHOLD, method=args.aggregate)
    genuine, stranger = [], []  # (score of the right identity or best score, named correctly at a threshold?)
    for d in decisions:
        from reid_core.types import Track

        gid, _ = majority_gt_id(Track(d.track_id, "", "", frames=d.frames, boxes=d.boxes), gt)
        if gid is None or gid in enrol_gids:
            continue
        person = persons[gid]
        if person in ENROLLED:
            genuine.append((d.match.score, d.match.best_match == person))
        else:
            stranger.append(d.match.score)
    g_scores = np.array([s if ok else -1 for s, ok in genuine])  # a wrong best match never counts as detected
    s_scores = np.array(stranger)
    t = DEFAULT_THRESHOLD
    dir_t, far_t = float((g_scores >= t).mean()), float((s_scores >= t).mean())
    grid = np.unique(np.concatenate([s_scores + 1e-9, g_scores, [0.0, 1.01]]))  # just above each stranger
    curve = [(float((s_scores >= x).mean()), float((g_scores >= x).mean())) for x in grid]

    def dir_at(far_max):
        ok = [d for f, d in curve if f <= far_max]
        return max(ok) if ok else 0.0

    report = {"aggregate": args.aggregate, "threshold": t, "genuine_tracks": len(g_scores),
              "stranger_tracks": len(s_scores), "DIR": round(dir_t, 3), "FAR": round(far_t, 3),
              "DIR@FAR=1%": round(dir_at(0.01), 3), "DIR@FAR=5%": round(dir_at(0.05), 3),
              "genuine_scores": sorted(round(float(s), 3) for s in g_scores),
              "stranger_max": round(float(s_scores.max()), 3) if len(s_scores) else None}
    print(json.dumps(report, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fars, dirs = zip(*sorted(curve))
    plt.figure(figsize=(5, 4))
    plt.step(fars, dirs, where="post")
    plt.scatter([far_t], [dir_t], color="red", label=f"default threshold {t:.2f}")
    plt.xlabel("FAR (stranger tracks named)")
    plt.ylabel("DIR (later visits named correctly)")
    plt.title("PETS09-S2L1 open-set identification")
    plt.legend()
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    plt.savefig(args.plot, dpi=120, bbox_inches="tight")


if __name__ == "__main__":
    main()
