"""The README's evaluation table: PETS09-S2L1 under the MOTChallenge-as-ReID protocol (persons), one row per setting.

    .venv/bin/python bench/eval_pets.py [--no-cache] [--out bench/out/eval_pets]

Every row is measured by `reid_core.evaluation.runner` (the code behind `reid eval`). Embeddings and the tracker's
output are cached on disk, so a second run only re-scores; --no-cache recomputes everything (about 10 minutes on
2 CPU cores, most of it the tracker and embedding the tracker's crops). Also prints the per-track protocol
(--by-track: every re-entry is its own identity) for the baseline and --best, and writes CMC/ROC plots comparing
the main rows.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from reid_core.evaluation import plots
from reid_core.evaluation.runner import BEST, DiskCache, EvalSettings, MotEvaluation, default_cache

PETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pets09_s2l1"
M17, M1501, BOXMOT = "osnet_x0_25_msmt17", "osnet_x0_25_market1501", "osnet_x0_25_msmt17_boxmot"
I287, I288 = "person-reidentification-retail-0287", "person-reidentification-retail-0288"

ROWS: list[tuple[str, EvalSettings]] = [
    ("OSNet x0.25 MSMT17, per crop (torch)", EvalSettings(models=(M17,), backend="torch")),
    ("OSNet x0.25 MSMT17, per crop (OpenVINO)", EvalSettings(models=(M17,))),
    ("OSNet x0.25 Market-1501, per crop (torch)", EvalSettings(models=(M1501,), backend="torch")),
    ("OSNet x0.25 Market-1501, per crop (OpenVINO)", EvalSettings(models=(M1501,))),
    ("OSNet x0.25 MSMT17 boxmot export (ONNX on OpenVINO)", EvalSettings(models=(BOXMOT,))),
    ("Intel person-reidentification-retail-0288", EvalSettings(models=(I288,))),
    ("Intel person-reidentification-retail-0287", EvalSettings(models=(I287,))),
    ("MSMT17 + flip", EvalSettings(models=(M17,), flip=True)),
    ("MSMT17 + re-ranking", EvalSettings(models=(M17,), rerank=True)),
    ("MSMT17 + AQE (k=3)", EvalSettings(models=(M17,), aqe=3)),
    ("MSMT17 + tracker tracks (w=0.5)", EvalSettings(models=(M17,), tracks="tracker", track_weight=0.5)),
    ("MSMT17 + tracker tracks (w=1, replace)", EvalSettings(models=(M17,), tracks="tracker", track_weight=1.0)),
    ("MSMT17 + tracker tracks (w=0.5) + re-ranking",
     EvalSettings(models=(M17,), tracks="tracker", track_weight=0.5, rerank=True)),
    ("MSMT17 + flip + tracker tracks (w=0.5) + AQE (k=3)",
     EvalSettings(models=(M17,), flip=True, tracks="tracker", track_weight=0.5, aqe=3)),
    ("MSMT17 + oracle tracks (gt, w=1): upper bound", EvalSettings(models=(M17,), tracks="oracle", track_weight=1.0)),
    ("ensemble MSMT17 + Market-1501, flip", EvalSettings(models=(M17, M1501), flip=True)),
    ("ensemble 0287 + boxmot MSMT17, flip", EvalSettings(models=(I287, BOXMOT), flip=True)),
    ("0287 + flip", EvalSettings(models=(I287,), flip=True)),
    ("0287 + flip + AQE (k=3)", EvalSettings(models=(I287,), flip=True, aqe=3)),
    ("0287 + flip + tracker tracks (w=0.5)", EvalSettings(models=(I287,), flip=True, tracks="tracker")),
    ("0287 + flip + tracker tracks (w=0.5) + re-ranking",
     EvalSettings(models=(I287,), flip=True, tracks="tracker", rerank=True)),
    ("0287 + oracle tracks (gt, w=1): upper bound", EvalSettings(models=(I287,), tracks="oracle", track_weight=1.0)),
    ("--best: 0287 + flip + re-ranking", BEST),
]


def fmt(label: str, report) -> str:
    r = report.rank
    v = report.verification
    tar = v.tar_at(1e-3) if v is not None else None
    cov = f"{report.track_coverage:.0%}" if report.track_coverage is not None else ""
    return (f"| {label} | {r.mAP:.3f} | {r.rank(1):.3f} | {r.rank(5):.3f} | {r.rank(10):.3f} | {r.mINP:.3f} | "
            f"{'' if tar is None else f'{tar:.3f}'} | {cov} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("bench/out/eval_pets"))
    args = ap.parse_args()
    cache = DiskCache(None) if args.no_cache else default_cache()
    t0 = time.perf_counter()
    persons = MotEvaluation(PETS, use_persons=True, cache=cache, log=lambda m: print(f"  .. {m}", flush=True))
    header = ("| setting | mAP | R1 | R5 | R10 | mINP | TAR@FAR1e-3 | tracker coverage |\n"
              "|---|---|---|---|---|---|---|---|")
    lines = []
    reports = {}
    for label, settings in ROWS:
        report = persons.run(settings)
        reports[label] = report
        lines.append(fmt(label, report))
        print(lines[-1], flush=True)
    by_track = MotEvaluation(PETS, use_persons=False, cache=cache)
    track_lines = [fmt(label, by_track.run(s)) for label, s in
                   (("OSNet x0.25 MSMT17, per crop (OpenVINO)", EvalSettings()), ("--best", BEST))]

    args.out.mkdir(parents=True, exist_ok=True)
    keep = [ROWS[1][0], ROWS[8][0], ROWS[10][0], ROWS[14][0], ROWS[-1][0]]
    plots.plot_cmc([plots.cmc_curve(k, reports[k].rank.cmc) for k in keep], args.out / "cmc.png",
                   "CMC, PETS09-S2L1 persons")
    plots.plot_roc([plots.roc_curve(k, reports[k].verification.roc) for k in keep], args.out / "roc.png",
                   "ROC, PETS09-S2L1 persons")

    p = persons.protocol.counts()
    print()
    print(f"PETS09-S2L1, persons protocol: {p.queries} queries, {p.gallery} gallery crops, {p.identities} "
          f"persons, {p.cameras} pseudo-cameras of {p.chunk_frames} frames")
    print(header)
    print("\n".join(lines))
    t = by_track.protocol.counts()
    print()
    print(f"Per-track protocol (--by-track): {t.queries} queries, {t.gallery} gallery, {t.identities} gt tracks")
    print(header)
    print("\n".join(track_lines))
    print(f"\nplots: {args.out / 'cmc.png'}, {args.out / 'roc.png'}; total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
