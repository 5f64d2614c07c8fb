"""Open-set identification on PETS09-S2L1 (the issue's protocol).

    .venv/bin/python bench/openset.py [--store DIR] [--threshold T]

Enroll p01, p03, p05, p07 (actors with several visits) with one click each: the person picked by their gt box at
the first frame of their first visit, the whole video as the range, exactly as a user would with
`reid enroll VIDEO --name N --at-frame F --box x,y,w,h`; what each enrollment captured of that visit is reported.
Everyone else is a stranger.
Identify runs once over the whole video; output tracks are mapped to gt track ids (IoU 0.5, majority) and tracks
of an enrollment visit are ignored. DIR = later-visit tracks of enrolled actors named correctly; FAR = stranger
tracks given any name. Both track aggregations (mean, quality-weighted) are scored on the same tracks.
Writes bench/out/openset.json (every track's decision) and bench/out/dir_far.png.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from reid_core.enrollment import enroll
from reid_core.groundtruth import gt_ids_of_track, load_mot_gt, load_persons, majority_gt_id
from reid_core.matching import identify
from reid_core.settings import Settings
from reid_core.store import Store
from reid_core.types import Track

DEFAULT_THRESHOLD = Settings.from_env().threshold  # the embedder in use: its calibrated decision threshold

PETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pets09_s2l1"
OUT = Path(__file__).parent / "out"
ENROLLED = ("p01", "p03", "p05", "p07")
METHODS = ("mean", "quality")


def enroll_first_visits(store: Store, gt, persons) -> tuple[set[int], dict]:
    """One click per enrolled actor on the first frame of their first visit, the whole video as the range (what a
    user does). Returns the visits' gt ids and, per actor, what the enrollment captured (against gt)."""
    spans: dict[int, list[int]] = {}
    for frame, rows in gt.items():
        for gid, _ in rows:
            spans.setdefault(gid, []).append(frame)
    enrol_gids, captured = set(), {}
    for person in ENROLLED:
        first = min((g for g, p in persons.items() if p == person), key=lambda g: min(spans[g]))
        enrol_gids.add(first)
        a = min(spans[first])
        box = next(bx for g, bx in gt[a] if g == first)
        r = enroll(store, PETS / "vtest.avi", person, at_frame=a, box=box)
        captured[person] = enrollment_capture(store, r.added_keys, first, len(spans[first]), gt, persons, person)
        captured[person].update(segments=r.segments, span=list(r.frame_span), warnings=r.warnings)
    return enrol_gids, captured


def enrollment_capture(store: Store, keys: list[str], gid: int, visit_boxes: int, gt, persons, person) -> dict:
    """Share of the visit's gt boxes the enrolled crops cover, and share of enrolled crops that are the person
    (of those matching a gt box at IoU 0.5; unmatched crops are counted separately)."""
    crops = store.get_crops(keys, jpeg=False)
    t = Track(0, "", "", frames=[c.frame for c in crops], boxes=[c.box for c in crops])
    ids = gt_ids_of_track(t, gt)
    matched = [i for i in ids if i is not None]
    own = sum(1 for i in matched if persons.get(i) == person)
    return {"crops": len(keys), "visit_gt_boxes": visit_boxes,
            "capture": round(sum(1 for i in matched if i == gid) / visit_boxes, 3),
            "precision": round(own / max(len(matched), 1), 3), "no_gt_match": len(ids) - len(matched)}


def score_tracks(decisions, gt, persons, enrol_gids):
    """(genuine scores, stranger scores, rows): a genuine track whose best match is the wrong identity scores -1
    (never counted as detected at any threshold)."""
    genuine, stranger, rows = [], [], []
    for d in decisions:
        gid, purity = majority_gt_id(Track(d.track_id, "", "", frames=d.frames, boxes=d.boxes), gt)
        role = ("no gt" if gid is None else "enrollment visit" if gid in enrol_gids
                else "genuine" if persons[gid] in ENROLLED else "stranger")
        rows.append({"track_id": d.track_id, "frames": [d.frames[0], d.frames[-1]], "crops": len(d.frames),
                     "gt_track": gid, "person": persons.get(gid), "purity": round(purity, 2), "role": role,
                     "best_match": d.match.best_match, "score": round(d.match.score, 3)})
        if role == "genuine":
            genuine.append(d.match.score if d.match.best_match == persons[gid] else -1.0)
        elif role == "stranger":
            stranger.append(d.match.score)
    return np.array(genuine), np.array(stranger), rows


def dir_far(genuine: np.ndarray, stranger: np.ndarray, t: float) -> tuple[float, float]:
    return float((genuine >= t).mean()), float((stranger >= t).mean())


def sweep(genuine: np.ndarray, stranger: np.ndarray) -> list[tuple[float, float, float]]:
    """(threshold, FAR, DIR) at every distinct score (plus just above each stranger score)."""
    grid = np.unique(np.concatenate([genuine, stranger, stranger + 1e-6, [0.0, 1.01]]))
    return [(float(x), *dir_far(genuine, stranger, x)[::-1]) for x in grid]


def dir_at_far(curve, far_max: float) -> tuple[float, float]:
    """Best DIR over thresholds whose FAR <= far_max, and the lowest such threshold."""
    ok = [(d, -t) for t, f, d in curve if f <= far_max]
    d, t = max(ok)
    return d, -t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default=None, help="store folder (default: a fresh temporary one)")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    args = ap.parse_args()
    gt, persons = load_mot_gt(PETS / "gt.txt"), load_persons(PETS / "persons.json")
    store = Store(args.store or tempfile.mkdtemp(prefix="openset-"))
    enrol_gids, captured = enroll_first_visits(store, gt, persons)
    t = args.threshold
    report, curves, all_rows = {"threshold": t, "enrollment": captured, "methods": {}}, {}, {}
    for method in METHODS:
        decisions = identify(store, PETS / "vtest.avi", threshold=t, method=method)
        genuine, stranger, rows = score_tracks(decisions, gt, persons, enrol_gids)
        curve = sweep(genuine, stranger)
        d, f = dir_far(genuine, stranger, t)
        d1, t1 = dir_at_far(curve, 0.01)
        d5, t5 = dir_at_far(curve, 0.05)
        report["methods"][method] = {
            "genuine_tracks": len(genuine), "stranger_tracks": len(stranger), "DIR": round(d, 3), "FAR": round(f, 3),
            "DIR@FAR<=1%": round(d1, 3), "threshold@FAR<=1%": round(t1, 3),
            "DIR@FAR<=5%": round(d5, 3), "threshold@FAR<=5%": round(t5, 3),
            "genuine_min": round(float(genuine.min()), 3), "stranger_max": round(float(stranger.max()), 3),
            "genuine_scores": sorted(round(float(s), 3) for s in genuine)}
        curves[method], all_rows[method] = curve, rows
    print(json.dumps(report, indent=1))
    OUT.mkdir(exist_ok=True)
    (OUT / "openset.json").write_text(json.dumps({**report, "tracks": all_rows}, indent=1))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.figure(figsize=(5.5, 4))
    for method, curve in curves.items():
        pts = sorted((f, d) for _, f, d in curve)
        plt.step([p[0] for p in pts], [p[1] for p in pts], where="post", label=f"{method} aggregation")
        m = report["methods"][method]
        plt.scatter([m["FAR"]], [m["DIR"]], zorder=3)
    plt.axvline(0.05, color="grey", lw=0.5, ls=":")
    plt.xlabel("FAR (stranger tracks given a name)")
    plt.ylabel("DIR (later visits named correctly)")
    plt.title(f"PETS09-S2L1 open-set identification (dots: threshold {t:.2f})", fontsize=9)
    plt.ylim(0, 1.02)
    plt.legend(loc="lower right")
    plt.savefig(OUT / "dir_far.png", dpi=120, bbox_inches="tight")


if __name__ == "__main__":
    main()
