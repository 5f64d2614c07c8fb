"""Scoring speed on a Market-1501-sized problem: 3,368 queries x 15,913 gallery items, random distances.

    .venv/bin/python bench/eval_speed.py [--repeats 3] [--torchreid-queries 337] [--full-torchreid]

Prints the project's vectorised evaluator (best of N runs), the verification view on the same matrix, and
torchreid's Python evaluator (`evaluate_rank(use_cython=False)`): by default timed on the first 337 queries and
scaled by 10 (it is a per-query loop, so it scales linearly); --full-torchreid times all 3,368 (the issue quotes
about 72 s on this machine class).
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from reid_core.evaluation.metrics import evaluate_rank
from reid_core.evaluation.verification import verify

NQ, NG = 3368, 15913


def market_like(seed: int = 0):
    rng = np.random.default_rng(seed)
    d = rng.random((NQ, NG), dtype=np.float32)
    qp, gp = rng.integers(1, 752, NQ), rng.integers(0, 752, NG)
    qc, gc = rng.integers(1, 7, NQ), rng.integers(1, 7, NG)
    return d, qp, gp, qc, gc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--torchreid-queries", type=int, default=337)
    ap.add_argument("--full-torchreid", action="store_true")
    args = ap.parse_args()
    d, qp, gp, qc, gc = market_like()

    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        ours = evaluate_rank(d, qp, gp, qc, gc)
        times.append(time.perf_counter() - t)
    print(f"matrix                         {NQ} x {NG} float32 (random distances, 751 ids, 6 cameras)")
    print(f"reid_core evaluate_rank        {min(times):6.2f} s  (best of {args.repeats}; all: "
          f"{', '.join(f'{x:.2f}' for x in times)}) mAP {ours.mAP:.6f}")

    t = time.perf_counter()
    v = verify(1.0 - d, qp, gp, qc, gc)
    print(f"reid_core verify (ROC, EER)    {time.perf_counter() - t:6.2f} s  ({v.num_genuine} genuine, "
          f"{v.num_impostor} impostor pairs)")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torchreid.reid.metrics.rank import evaluate_rank as reference
    n = NQ if args.full_torchreid else min(NQ, args.torchreid_queries)
    t = time.perf_counter()
    cmc, m_ap = reference(d[:n], qp[:n], gp, qc[:n], gc, max_rank=50, use_cython=False)
    elapsed = time.perf_counter() - t
    same = evaluate_rank(d[:n], qp[:n], gp, qc[:n], gc)
    agree = abs(same.mAP - m_ap) < 1e-6
    if n == NQ:
        print(f"torchreid evaluate_rank (py)   {elapsed:6.2f} s  (all queries) mAP {m_ap:.6f}")
    else:
        print(f"torchreid evaluate_rank (py)   {elapsed * NQ / n:6.2f} s  (scaled from {elapsed:.2f} s on the first "
              f"{n} queries; the issue quotes ~72 s, FastReID's compiled evaluator ~2.4 s)")
    print(f"same mAP on those queries      {'yes' if agree else 'NO'} ({same.mAP:.6f} vs {m_ap:.6f}; random float32 "
          f"distances can tie, which torchreid's unstable sort orders arbitrarily)")


if __name__ == "__main__":
    main()
