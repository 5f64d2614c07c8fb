"""How well an embedder separates people on PETS09-S2L1: the numbers behind reid_core/calibration.py's gate and
segment constants (docs/identify.md, "Segments").

    .venv/bin/python bench/appearance_stats.py [--model NAME] [--store DIR]

Ingests the whole clip with that embedder's default settings (or reuses --store), maps every stored crop to its gt
person (IoU 0.5) and prints: each crop's cosine to its track's running feature (exponential average, as the
tracker keeps it) for the same person and for other people in the same frame; the cosine between 12-crop window
means of the same and of different people; and every track's best appearance cut with its purity.
"""
from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from reid_core.embedding import DEFAULT_MODEL
from reid_core.groundtruth import gt_ids_of_track, load_mot_gt, load_persons
from reid_core.ingest import ingest
from reid_core.segments import _best_cut
from reid_core.settings import ingest_settings_for
from reid_core.store import Store

PETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pets09_s2l1"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--store", default=None)
    args = ap.parse_args()
    store = Store(args.store or tempfile.mkdtemp(prefix="appearance-"))
    ingest(PETS / "vtest.avi", store, camera="pets", settings=ingest_settings_for(args.model))
    gt, persons = load_mot_gt(PETS / "gt.txt"), load_persons(PETS / "persons.json")
    tracks = store.tracks()
    person, feats, frame_of = {}, {}, {}
    for t in tracks:
        for k, f, g in zip(t.keys, t.frames, gt_ids_of_track(t, gt)):
            person[k], frame_of[k] = (persons[g] if g is not None else None), f
        feats.update(zip(t.keys, store.features(t.keys)))
    by_frame: dict[int, list[str]] = {}
    for k, f in frame_of.items():
        by_frame.setdefault(f, []).append(k)

    same, other = [], []
    for t in tracks:
        keys = [k for _, k in sorted(zip(t.frames, t.keys))]
        ema = None
        for i, k in enumerate(keys):
            if ema is not None and person[k]:
                owner = Counter(person[x] for x in keys[max(0, i - 10):i] if person[x]).most_common(1)
                ref = ema / np.linalg.norm(ema)
                if owner and owner[0][0] == person[k]:
                    same.append(float(feats[k] @ ref))
                for j in by_frame[frame_of[k]]:
                    if person[j] and owner and person[j] != owner[0][0]:
                        other.append(float(feats[j] @ ref))
            ema = feats[k] if ema is None else 0.9 * ema + 0.1 * feats[k]
    print(f"{args.model}: crop vs track feature, same person pct 0.5/1/5/50:",
          np.percentile(same, [0.5, 1, 5, 50]).round(3), "| other person, same frame pct 50/95/99:",
          np.percentile(other, [50, 95, 99]).round(3))

    windows = []
    for t in tracks:
        keys = [k for _, k in sorted(zip(t.frames, t.keys))]
        for i in range(0, len(keys) - 12, 12):
            top = Counter(person[k] for k in keys[i:i + 12]).most_common(1)[0]
            if top[0] and top[1] >= 11:
                m = np.mean([feats[k] for k in keys[i:i + 12]], axis=0)
                windows.append((top[0], m / np.linalg.norm(m)))
    pairs = [(a[0] == b[0], float(a[1] @ b[1])) for i, a in enumerate(windows) for b in windows[i + 1:]]
    print("12-crop window means: same person pct 1/5/50:",
          np.percentile([s for ok, s in pairs if ok], [1, 5, 50]).round(3), "| different pct 50/95/99/max:",
          np.percentile([s for ok, s in pairs if not ok], [50, 95, 99, 100]).round(3))
    for t in tracks:
        keys = [k for _, k in sorted(zip(t.frames, t.keys))]
        at, sim = _best_cut(np.stack([feats[k] for k in keys]), 6)
        who = Counter(person[k] for k in keys if person[k])
        purity = who.most_common(1)[0][1] / sum(who.values()) if who else 1.0
        print(f"track {t.track_id:3d}: {len(keys):4d} crops, purity {purity:.3f}, best cut {sim:.3f} at {at}")


if __name__ == "__main__":
    main()
