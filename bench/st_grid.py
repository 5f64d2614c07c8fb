"""Spatial-temporal re-identification on GRID: visual-only vs joint (appearance x camera-transition timing).

    .venv/bin/python bench/st_grid.py [--root DIR] [--models M ...] [--seed 0] [--json bench/out/st_grid.json]

GRID (../shared/data/peta/GRID) names every image PPPP_CAM_FRAME_x_y_w_h with FRAME on one clock shared by the
cameras; the time unit here is that clock's frame. Protocol:
- the persons seen by two cameras are split in half (seeded shuffle); the training half is the only data the st
  model and its constants ever see;
- constants (bin, Parzen sigma, l0, g0, l1, g1) are chosen on the training half alone: a 2-fold inner split (learn
  transitions on one fold, rank the other fold's first sightings against its later sightings plus half A of the
  distractors, and the other way round), best mean of R1 and mAP;
- test: the transition model is learned from the whole training half with those constants; each test person's first
  sighting queries the test persons' later sightings plus every distractor (persons seen once) — and, strictly, plus
  only distractor half B, the half no tuning saw. Visual-only and joint use the same features and gallery.
"""
from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from reid_core.embedding import DEFAULT_MODEL
from reid_core.evaluation import datasets as ds
from reid_core.evaluation.metrics import evaluate_rank
from reid_core.evaluation.runner import EvalSettings, PetaEvaluation, image_features
from reid_core.spacetime import Span, StParams, Transition, learn, st_matrix

GRID = Path(__file__).resolve().parents[2] / "shared" / "data" / "peta" / "GRID"
OUT = Path(__file__).parent / "out"

BINS = (1.0, 2.0, 4.0)  # frames of GRID's clock
SIGMAS = (0.0, 1.0, 2.0, 4.0, 8.0)
L0S = (1.0, 5.0)
G0S = (2.0, 5.0, 10.0, 20.0)
L1S = (0.5, 1.0, 2.0, 5.0)
G1S = (5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)


@dataclass(frozen=True)
class Image:
    index: int  # row in the feature matrix
    pid: int
    cam: int
    frame: int

    @property
    def span(self) -> Span:
        return Span(f"cam{self.cam}", float(self.frame), float(self.frame))


@dataclass(frozen=True)
class Figures:
    r1: float
    r5: float
    mAP: float
    queries: int
    gallery: int


def load(root: Path) -> tuple[list[str], list[Image]]:
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in ds.IMAGE_SUFFIXES)
    images = []
    for i, p in enumerate(files):
        n = ds.parse_peta_name("grid", p.stem)
        images.append(Image(i, n.pid, n.cam, n.frame))
    return [str(p) for p in files], images


def transitions(pairs: list[tuple[Image, Image]]) -> list[Transition]:
    return [Transition(f"cam{a.cam}", f"cam{b.cam}", float(b.frame - a.frame)) for a, b in pairs]


def rank(feats: np.ndarray, queries: list[Image], gallery: list[Image], model=None) -> Figures:
    qf, gf = feats[[q.index for q in queries]], feats[[g.index for g in gallery]]
    s = qf @ gf.T
    if model is not None:
        s = model.adjust_matrix(s, st_matrix(model, [q.span for q in queries], [g.span for g in gallery]))
    r = evaluate_rank(-s, np.array([q.pid for q in queries]), np.array([g.pid for g in gallery]),
                      np.array([q.cam for q in queries]), np.array([g.cam for g in gallery]), max_rank=5)
    return Figures(r.rank(1), r.rank(5), r.mAP, len(queries), len(gallery))


def tune(feats: np.ndarray, pairs: list[tuple[Image, Image]], distractors: list[Image]) -> tuple[StParams, float]:
    """Constants by a 2-fold split of the training pairs only; returns the best and its inner score."""
    half = len(pairs) // 2
    folds = [(pairs[:half], pairs[half:]), (pairs[half:], pairs[:half])]
    sims, spans = [], []
    for learn_on, score_on in folds:
        q = [a for a, _ in score_on]
        g = [b for _, b in score_on] + distractors
        sims.append((feats[[x.index for x in q]] @ feats[[x.index for x in g]].T, q, g))
        spans.append(learn_on)
    best: tuple[float, StParams] = (-1.0, StParams())
    for bin_, sigma in itertools.product(BINS, SIGMAS):
        base = StParams(bin_s=bin_, sigma_s=sigma, max_gap_s=20000.0)
        models = [learn(transitions(lo), base) for lo in spans]
        ps = [st_matrix(m, [x.span for x in q], [x.span for x in g]) for m, (_, q, g) in zip(models, sims)]
        for l0, g0, l1, g1 in itertools.product(L0S, G0S, L1S, G1S):
            prm = replace(base, l0=l0, g0=g0, l1=l1, g1=g1)
            total = 0.0
            for m, p, (s, q, g) in zip(models, ps, sims):
                m = replace(m, params=prm)
                r = evaluate_rank(-m.adjust_matrix(s, p), np.array([x.pid for x in q]), np.array([x.pid for x in g]),
                                  np.array([x.cam for x in q]), np.array([x.cam for x in g]), max_rank=1)
                total += (r.rank(1) + r.mAP) / 2
            if total / len(folds) > best[0]:
                best = (total / len(folds), prm)
    return best[1], best[0]


def run(root: Path, model_name: str, seed: int) -> dict:
    paths, images = load(root)
    ev = PetaEvaluation(root)
    feats = image_features(ev.embeddings, paths, model_name, EvalSettings(models=(model_name,)))
    feats = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    by_pid: dict[int, list[Image]] = {}
    for im in images:
        by_pid.setdefault(im.pid, []).append(im)
    pairs = [tuple(sorted(v, key=lambda x: x.frame)) for _, v in sorted(by_pid.items()) if len(v) == 2]
    distractors = [v[0] for _, v in sorted(by_pid.items()) if len(v) == 1]
    rng = random.Random(seed)
    rng.shuffle(pairs)
    d = distractors[:]
    rng.shuffle(d)
    train, test = pairs[: len(pairs) // 2], pairs[len(pairs) // 2:]
    d_tune, d_held = d[: len(d) // 2], d[len(d) // 2:]
    params, inner = tune(feats, train, d_tune)
    model = learn(transitions(train), params)
    queries = [a for a, _ in test]
    out = {"model": model_name, "seed": seed, "train_persons": len(train), "test_persons": len(test),
           "distractors": len(distractors), "params": asdict(params), "inner_score": round(inner, 4),
           "p_ref": model.p_ref, "pairs": {f"{a}->{b}": n for (a, b), n in sorted(model.counts.items())}}
    for name, gallery in (("all_distractors", [b for _, b in test] + distractors),
                          ("held_out_distractors", [b for _, b in test] + d_held)):
        vis, jnt = rank(feats, queries, gallery), rank(feats, queries, gallery, model)
        out[name] = {"visual": asdict(vis), "joint": asdict(jnt)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=GRID)
    ap.add_argument("--models", nargs="+", default=[DEFAULT_MODEL])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=OUT / "st_grid.json")
    a = ap.parse_args(argv)
    results = [run(a.root, m, a.seed) for m in a.models]
    for r in results:
        p = r["params"]
        print(f"{r['model']}: train {r['train_persons']} persons, test {r['test_persons']}, "
              f"{r['distractors']} distractors; constants (inner 2-fold on train): bin {p['bin_s']:g} sigma "
              f"{p['sigma_s']:g} l0 {p['l0']:g} g0 {p['g0']:g} l1 {p['l1']:g} g1 {p['g1']:g}")
        for name in ("all_distractors", "held_out_distractors"):
            v, j = r[name]["visual"], r[name]["joint"]
            print(f"  {name:21s} gallery {v['gallery']:3d}: visual R1 {v['r1']:.3f} mAP {v['mAP']:.3f} | "
                  f"joint R1 {j['r1']:.3f} mAP {j['mAP']:.3f}")
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
