"""Ingest throughput on PETS09-S2L1: detector alone vs the full pipeline, embedder crops/s, peak RSS.

    .venv/bin/python bench/ingest.py [--frames 200] [--repeat 3]

Models are loaded (and warmed up) before timing so the figures are steady-state rates. The two arms run back to
back, `--repeat` times, sharing one detector (same config in both); the ratio is taken per pair, so a pair slowed
by other load on the machine shows as an outlier rather than skewing one arm. Median and min are printed.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from reid_core.embedding import STATIC_BATCHES, load_embedder
from reid_core.ingest import ingest, models_for
from reid_core.settings import Settings
from reid_core.store import Store
from reid_core.video import read_frames

DEFAULT_SETTINGS = Settings.from_env().ingest

VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "pets09_s2l1" / "vtest.avi"


def detector_fps(frames: int) -> float:
    detector = models_for(DEFAULT_SETTINGS).detector
    t = time.perf_counter()
    for index, image in read_frames(VIDEO, 0, frames - 1):
        detector.detect(image, index)
    return frames / (time.perf_counter() - t)


def ingest_fps(frames: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        result = ingest(VIDEO, Store(d), from_frame=0, to_frame=frames - 1)
        return frames / (time.perf_counter() - t), result.crops


def embedder_rate(backend: str, batch: int, n: int = 256) -> float:
    e = load_embedder("osnet_x0_25_msmt17", backend)
    crops = np.random.default_rng(0).integers(0, 256, (n, 256, 128, 3), dtype=np.uint8)
    e.embed(crops[:batch], batch_size=batch)  # warm-up
    count = n if batch > 1 else min(n, 64 if backend == "openvino" else 32)
    t = time.perf_counter()
    e.embed(crops[:count], batch_size=batch)
    return count / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    embedder = models_for(DEFAULT_SETTINGS).embedder  # load and warm up outside the timings
    detector_fps(5)
    ingest_fps(30)
    pairs = []
    for _ in range(args.repeat):
        det = detector_fps(args.frames)
        full, crops = ingest_fps(args.frames)
        pairs.append((det, full, full / det))
        print(f"  detector {det:5.1f}  full {full:5.1f}  ratio {full / det:.2f}", flush=True)
    det, full, ratio = (statistics.median(col) for col in zip(*pairs))
    lo_det, lo_full, lo_ratio = (min(col) for col in zip(*pairs))
    print(f"frames                      {args.frames} of {VIDEO.name} (768x576), {args.repeat} pairs: median (min)")
    print(f"detector alone              {det:6.1f} ({lo_det:.1f}) frames/s (decode + YOLOv8n int8 OpenVINO)")
    print(f"full ingest                 {full:6.1f} ({lo_full:.1f}) frames/s (detect + embed + track + store, "
          f"{crops} crops)")
    print(f"ratio full / detector       {ratio:6.2f} ({lo_ratio:.2f})")
    print(f"embedder precision          {embedder.precision} (OpenVINO, static batches of {STATIC_BATCHES})")
    for backend in ("openvino", "torch"):
        for batch in (1, 32):
            print(f"embedder {backend:8s} batch {batch:2d}  {embedder_rate(backend, batch):6.0f} crops/s")
    print(f"peak RSS                    {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:6.0f} MiB")


if __name__ == "__main__":
    main()
