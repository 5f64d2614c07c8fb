"""Face threshold from genuine/impostor cosine pairs over the face photos in ../shared/data/faces/photos.

    .venv/bin/python bench/face_calibrate.py [--photos DIR] [--out bench/out/face_calibration.json]

Every face found in every photo (detect -> 5 landmarks -> align -> embed, reid_core.face) is one sample; who it is
comes from the file name (obama*.jpg one person, biden.jpg another, the two enrolment photos two more) except
two_people.jpg, whose faces are told apart by their best match among the single-face photos (Biden left, Obama
right, as the picture shows). Genuine = two faces of one person, impostor = two different people.

Rule: the genuine and impostor cosines do not overlap here (a gap of ~0.4), so every threshold in the gap has no
error on these photos; where in the gap is a choice of false-accept rate. The impostor cosines are fitted with a
normal distribution and the threshold is its 99th percentile (mean + 2.326 sd: 1% of impostor comparisons accepted
if their scores are normal), rounded up to 0.01; the fit is printed with the 99.9th percentile for comparison.
The value goes into reid_core/fusion.py by hand (FACE_THRESHOLD), with the scale (the impostor sd, rounded).
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path

import cv2
import numpy as np

from reid_core.face import load_face_models

ROOT = Path(__file__).resolve().parents[1]


def person_of(name: str) -> str:
    stem = Path(name).stem
    return "obama" if stem.startswith("obama") else stem


def samples(photos: Path) -> list[tuple[str, str, np.ndarray]]:
    models = load_face_models()
    out: list[tuple[str, str, np.ndarray]] = []
    group = []
    for path in sorted(photos.iterdir()):
        image = cv2.imread(str(path))
        if image is None:
            continue
        faces = models.faces(image)
        if path.stem == "two_people":
            group = [(path.name, i, f.feature) for i, f in enumerate(faces)]
            continue
        out += [(path.name, person_of(path.name), f.feature) for f in faces]
    for name, i, feat in group:  # named by their nearest single-face photo
        best = max(out, key=lambda s: float(s[2] @ feat))
        out.append((f"{name}#{i}", best[1], feat))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "faces" / "photos")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "face_calibration.json")
    args = ap.parse_args()
    s = samples(args.photos)
    genuine, impostor = [], []
    for a, b in itertools.combinations(s, 2):
        (genuine if a[1] == b[1] else impostor).append(float(a[2] @ b[2]))
    g, i = np.array(genuine), np.array(impostor)
    mu, sd = float(i.mean()), float(i.std(ddof=1))
    threshold = math.ceil((mu + 2.326 * sd) * 100) / 100
    result = {"faces": [(n, p) for n, p, _ in s], "genuine_pairs": len(g), "impostor_pairs": len(i),
              "genuine_min": round(float(g.min()), 4), "genuine_median": round(float(np.median(g)), 4),
              "impostor_max": round(float(i.max()), 4), "impostor_mean": round(mu, 4), "impostor_sd": round(sd, 4),
              "far_1pct": round(mu + 2.326 * sd, 4), "far_0.1pct": round(mu + 3.090 * sd, 4),
              "threshold": threshold, "errors_at_threshold": {"false_rejects": int((g < threshold).sum()),
                                                               "false_accepts": int((i >= threshold).sum())}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "faces"}, indent=1))


if __name__ == "__main__":
    main()
