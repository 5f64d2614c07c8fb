"""Memory and time of k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3): torchreid's reference, the project's
exact version, and the project's shortlist version, each in its own process.

    .venv/bin/python bench/rerank_memory.py [--big 20000] [--small 2000]

"extra" is the peak resident memory during the call minus the resident memory just before it (inputs already
built), read from /proc/self/status after resetting the peak with /proc/self/clear_refs. The reference holds
several dense (Q+G)^2 matrices, so its figure for 20k x 20k is scaled from the small run by ((Q+G) ratio)^2.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def _features(nq: int, ng: int, dim: int = 512):
    import numpy as np

    rng = np.random.default_rng(0)
    ids = max(10, (nq + ng) // 20)
    centres = rng.normal(size=(ids, dim)).astype(np.float32)
    qf = centres[rng.integers(0, ids, nq)] + rng.normal(size=(nq, dim)).astype(np.float32)
    gf = centres[rng.integers(0, ids, ng)] + rng.normal(size=(ng, dim)).astype(np.float32)
    return qf.astype(np.float32), gf.astype(np.float32)


def child(kind: str, nq: int, ng: int) -> None:
    from reid_core.evaluation.metrics import cosine_distance

    qf, gf = _features(nq, ng)
    if kind == "torchreid":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torchreid.reid.utils.rerank import re_ranking as fn
    elif kind == "exact":
        from reid_core.evaluation.rerank import re_ranking as fn
    else:
        from reid_core.evaluation.rerank import re_ranking_shortlist
    if kind in ("torchreid", "exact"):
        qg, qq, gg = cosine_distance(qf, gf), cosine_distance(qf, qf), cosine_distance(gf, gf)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS counter
    before = _status("VmRSS")
    t = time.perf_counter()
    if kind == "shortlist":
        re_ranking_shortlist(qf, gf, shortlist=100)
    else:
        fn(qg, qq, gg, k1=20, k2=6, lambda_value=0.3)
    seconds = time.perf_counter() - t
    print(json.dumps({"extra": _status("VmHWM") - before, "seconds": seconds}))


def run(kind: str, nq: int, ng: int) -> dict:
    r = subprocess.run([sys.executable, __file__, "--child", kind, str(nq), str(ng)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{kind} {nq}x{ng} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=2000)
    ap.add_argument("--big", type=int, default=20000)
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    s, b = args.small, args.big
    scale = ((2 * b) / (2 * s)) ** 2
    rows = []
    for kind in ("torchreid", "exact", "shortlist"):
        r = run(kind, s, s)
        rows.append((kind, f"{s} x {s}", r["extra"], r["seconds"], "measured"))
        if kind != "shortlist":
            rows.append((kind, f"{b} x {b}", r["extra"] * scale, None, f"scaled x{scale:.0f} from {s} x {s}"))
    r = run("shortlist", b, b)
    rows.append(("shortlist", f"{b} x {b}", r["extra"], r["seconds"], "measured"))
    print(f"{'version':10s} {'queries x gallery':>18s} {'extra memory':>13s} {'time':>9s}  note")
    for kind, size, extra, seconds, note in rows:
        t = f"{seconds:8.1f}s" if seconds is not None else "        -"
        print(f"{kind:10s} {size:>18s} {extra / 2**30:10.2f} GiB {t}  {note}")


if __name__ == "__main__":
    main()
