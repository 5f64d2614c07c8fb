"""Which embedder should be the default? One table over PETS09-S2L1 persons and three real cross-camera PETA sets.

    .venv/bin/python bench/eval_cross.py [--no-cache] [--out bench/out]

Rows: each candidate (OSNet x0.25 MSMT17 / Market-1501 / boxmot export, Intel 0287 / 0288, fusions) with and
without flip averaging and k-reciprocal re-ranking. Columns: PETS persons (the `reid eval --mot` protocol), VIPeR,
PRID, GRID (the `reid eval --peta` single-shot protocols, docs/evaluation.md), the mean R1 and mAP over the four,
and embedding speed (crops/s at batch 32, this CPU, one process). Nothing here is trained or tuned on these labels:
the only learned number, the weight of the "ssl" fusion, comes from the project tracker's tracks on PETS (no gt):
crops of one track far apart in time are positives, tracks seen in the same frame are negatives.

Features are cached per (model, flip, dataset) under OUT/cache, so a rerun only re-scores and re-times. Writes the
table to OUT/eval_cross.md (docs/evaluation.md gets a copy by hand) and the cosine distributions of the best and
the default candidate on VIPeR and PRID.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

import numpy as np

from reid_core.embedding import DEFAULT_MODEL, FUSIONS, FusionSpec, load_embedder
from reid_core.evaluation import datasets as ds
from reid_core.evaluation.runner import DiskCache, EvalSettings, MotEvaluation, PetaEvaluation

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PETS = SHARED / "pets09_s2l1"
PETA = {name: SHARED / "peta" / name for name in ("VIPeR", "PRID", "GRID")}
M17, M1501, BOXMOT = "osnet_x0_25_msmt17", "osnet_x0_25_market1501", "osnet_x0_25_msmt17_boxmot"
I287, I288 = "person-reidentification-retail-0287", "person-reidentification-retail-0288"
SSL_NAME = "fusion_osnet_0287_ssl"
CANDIDATES = [M17, M1501, BOXMOT, I288, I287, "fusion_osnet_0287", SSL_NAME, "fusion_0287_0288",
              "fusion_0287_boxmot"]
SPEED_CROPS = 256
POSITIVE_GAP = 20  # frames: same-track crops closer than this are near-duplicates, too easy to teach anything
WEIGHT_GRID = np.round(np.linspace(0.0, 1.0, 21), 2)


def cpu_name() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "unknown")


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(positive score > negative score), ties half: the Mann-Whitney statistic."""
    scores = np.concatenate([pos, neg])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for v in np.unique(scores[order][np.r_[False, np.diff(scores[order]) == 0]]):  # average ranks of ties
        ranks[scores == v] = ranks[scores == v].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def learn_fusion_weight(pets: MotEvaluation, flip: bool, log) -> tuple[float, dict]:
    """The OSNet weight w (0287 gets 1 - w) that best separates the tracker's positives from its negatives."""
    tracks = [t for cam in pets.tracks() for t in cam]
    frames = np.array([f for t in tracks for f in t.frames], np.int64)
    boxes = [b for t in tracks for b in t.boxes]
    owner = np.array([i for i, t in enumerate(tracks) for _ in t.frames], np.int64)
    settings = EvalSettings(flip=flip)
    feats = [pets._features(m, settings, "track-boxes", frames, boxes) for m in (M17, I287)]
    same = owner[:, None] == owner[None, :]
    far = np.abs(frames[:, None] - frames[None, :]) >= POSITIVE_GAP
    cooccur = (frames[:, None] == frames[None, :]) & ~same  # two tracks in one frame: two different people
    upper = np.triu(np.ones_like(same), 1)
    pos, neg = np.nonzero(same & far & upper), np.nonzero(cooccur & upper)
    cos = [(f @ f.T) for f in feats]
    curve = {}
    for w in WEIGHT_GRID:
        s = w * cos[0] + (1 - w) * cos[1]
        curve[float(w)] = auc(s[pos], s[neg])
    best = max(curve, key=lambda w: (curve[w], -abs(w - 0.5)))
    log(f"self-supervised weight: {len(tracks)} tracker tracks, {len(pos[0])} positive and {len(neg[0])} negative "
        f"pairs; AUC at w=0 {curve[0.0]:.4f}, 0.5 {curve[0.5]:.4f}, 1 {curve[1.0]:.4f}; best w={best} "
        f"({curve[best]:.4f})")
    return best, {"tracks": len(tracks), "positives": int(len(pos[0])), "negatives": int(len(neg[0])),
                  "auc": curve}


def speed(name: str, flip: bool, crops: np.ndarray) -> float:
    emb = load_embedder(name, "openvino", flip)
    emb.embed(crops[:32])  # compile and warm up
    t = time.perf_counter()
    emb.embed(crops, batch_size=32)
    return len(crops) / (time.perf_counter() - t)


def cosine_stats(ev: PetaEvaluation, settings: EvalSettings) -> dict:
    """Median (and 5th/95th percentile) cosine of true query-gallery pairs and of all other pairs."""
    qf, gf = ev.features(settings)
    p = ev.protocol
    sim = qf @ gf.T
    genuine = p.query.pids[:, None] == p.gallery.pids[None, :]
    g, i = sim[genuine], sim[~genuine]
    return {"genuine": np.percentile(g, [5, 50, 95]), "impostor": np.percentile(i, [5, 50, 95]),
            "n": (int(genuine.sum()), int((~genuine).sum()))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("bench/out"))
    args = ap.parse_args()
    t0 = time.perf_counter()

    def log(message: str) -> None:
        print(f"  .. {message}", flush=True)

    cache = DiskCache(None if args.no_cache else args.out / "cache")
    pets = MotEvaluation(PETS, use_persons=True, cache=cache, log=log)
    peta = {name: PetaEvaluation(path, cache, log) for name, path in PETA.items()}

    w, ssl = learn_fusion_weight(pets, flip=False, log=log)
    FUSIONS[SSL_NAME] = FusionSpec((M17, I287), (w, 1 - w), f"OSNet x0.25 MSMT17 {w:g} + 0287 {1 - w:g}, weight "
                                   f"learned from PETS tracker tracks (no labels)")

    speed_crops = ds.read_images(peta["VIPeR"].protocol.query.paths[:SPEED_CROPS])
    rows, results = [], {}
    for name in CANDIDATES:
        for flip in (False, True):
            cps = speed(name, flip, speed_crops)
            for rerank in (False, True):
                s = EvalSettings(models=(name,), flip=flip, rerank=rerank)
                cells = {"PETS": pets.run(s, with_verification=False).rank}
                cells.update({k: ev.run(s, with_verification=False).rank for k, ev in peta.items()})
                r1 = float(np.mean([c.rank(1) for c in cells.values()]))
                mAP = float(np.mean([c.mAP for c in cells.values()]))
                results[(name, flip, rerank)] = (cells, r1, mAP, cps)
                row = (f"| {name} | {'yes' if flip else ''} | {'yes' if rerank else ''} | "
                       + " | ".join(f"{cells[k].mAP:.3f} | {cells[k].rank(1):.3f}" if k == "PETS"
                                    else f"{cells[k].rank(1):.3f} | {cells[k].mAP:.3f}" for k in cells)
                       + f" | **{r1:.3f}** | **{mAP:.3f}** | {cps:.0f} |")
                rows.append(row)
                print(row, flush=True)

    precision = load_embedder(I287).precision
    header = ("| candidate | flip | re-rank | PETS mAP | PETS R1 | VIPeR R1 | VIPeR mAP | PRID R1 | PRID mAP | "
              "GRID R1 | GRID mAP | mean R1 | mean mAP | crops/s |\n" + "|---" * 14 + "|")
    counts = {k: ev.protocol.counts() for k, ev in peta.items()}
    pc = pets.protocol.counts()
    best_key = max(results, key=lambda k: (results[k][1] + results[k][2], -k[1], -k[2]))
    plain_best = max((k for k in results if not k[2]),
                     key=lambda k: (results[k][1] + results[k][2], -k[1]))
    lines = [
        f"CPU: {cpu_name()}, {len(os.sched_getaffinity(0))} of {os.cpu_count()} cores usable by this process "
        f"(shared with other work); OpenVINO precision: {precision}; "
        f"speed = crops/s at batch 32 over {SPEED_CROPS} VIPeR crops, "
        f"one process, after a warm-up batch (flip rows: two passes per crop).",
        f"Protocols: PETS persons {pc.queries} queries / {pc.gallery} gallery; "
        + "; ".join(f"{k} {c.queries} / {c.gallery} ({c.distractors} distractors)" for k, c in counts.items())
        + ". Mean = unweighted mean of the four R1s (mAPs).",
        f"Fusion {SSL_NAME}: OSNet weight {w:g} learned without labels ({ssl['tracks']} tracker tracks on PETS, "
        f"{ssl['positives']} positive / {ssl['negatives']} negative pairs; AUC {ssl['auc'][0.0]:.4f} at 0 (0287 "
        f"alone), {ssl['auc'][0.5]:.4f} at 0.5, {ssl['auc'][w]:.4f} at {w:g}, {ssl['auc'][1.0]:.4f} at 1).",
        "",
        header,
        *rows,
        "",
        f"Best mean (R1 + mAP): {best_key[0]}{' + flip' if best_key[1] else ''}"
        f"{' + re-rank' if best_key[2] else ''}: mean R1 {results[best_key][1]:.3f}, mAP {results[best_key][2]:.3f}, "
        f"{results[best_key][3]:.0f} crops/s. Best without re-ranking: {plain_best[0]}"
        f"{' + flip' if plain_best[1] else ''}: R1 {results[plain_best][1]:.3f}, mAP {results[plain_best][2]:.3f}.",
        "",
        "Cosine (no re-ranking) between a query and its true match (genuine) and all other query-gallery pairs "
        "(impostor): 5th / 50th / 95th percentile.",
        "",
        "| embedder | set | genuine p5 / median / p95 | impostor p5 / median / p95 | pairs (genuine / impostor) |",
        "|---|---|---|---|---|",
    ]
    for name, flip in dict.fromkeys([(plain_best[0], plain_best[1]), (I287, False), (DEFAULT_MODEL, False)]):
        for k in ("VIPeR", "PRID"):
            st = cosine_stats(peta[k], EvalSettings(models=(name,), flip=flip))
            g, i = st["genuine"], st["impostor"]
            lines.append(f"| {name}{' + flip' if flip else ''} | {k} | {g[0]:.3f} / {g[1]:.3f} / {g[2]:.3f} | "
                         f"{i[0]:.3f} / {i[1]:.3f} / {i[2]:.3f} | {st['n'][0]} / {st['n'][1]} |")
    text = "\n".join(lines)
    print()
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval_cross.md").write_text(text + "\n")
    print(f"\nwritten {args.out / 'eval_cross.md'}; total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
