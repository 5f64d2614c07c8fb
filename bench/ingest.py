"""Ingest throughput on PETS09-S2L1: detector alone vs the full pipeline, embedder crops/s, peak RSS.

    .venv/bin/python bench/ingest.py [--frames 200]

Models are loaded (and warmed up) before timing so the figures are steady-state rates.
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from reid_core.embedding import load_embedder
from reid_core.ingest import DEFAULT_SETTINGS, ingest, models_for
from reid_core.store import Store
from reid_core.video import read_frames

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
    args = ap.parse_args()
    models_for(DEFAULT_SETTINGS)  # load and warm up outside the timings
    detector_fps(5)
    det = detector_fps(args.frames)
    full, crops = ingest_fps(args.frames)
    print(f"frames                      {args.frames} of {VIDEO.name} (768x576)")
    print(f"detector alone              {det:6.1f} frames/s (decode + YOLOv8n int8 OpenVINO)")
    print(f"full ingest                 {full:6.1f} frames/s (detect + embed + track + store, {crops} crops)")
    print(f"ratio full / detector       {full / det:6.2f}")
    for backend in ("openvino", "torch"):
        for batch in (1, 32):
            print(f"embedder {backend:8s} batch {batch:2d}  {embedder_rate(backend, batch):6.0f} crops/s")
    print(f"peak RSS                    {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:6.0f} MiB")


if __name__ == "__main__":
    main()
