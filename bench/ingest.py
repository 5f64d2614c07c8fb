"""Ingest throughput and what it costs in quality, side by side on PETS09-S2L1 (one run, one table).

    .venv/bin/python bench/ingest.py [--frames 200] [--repeat 1] [--every 5] [--detect-every 2]

Arms, run back to back in one process with the models loaded and warmed up first:
  detector only       decode + YOLOv8n on every frame (no tracking, nothing stored): the reference rate
  every crop          the full ingest embedding every crop (feature_every=1, detect_every=1)
  sampled             the full ingest with feature sampling (feature_every=S, reid_core/sampling.py)
  sampled + stride    sampling, and the detector on every K-th frame with interpolated boxes in between
  naive loop          what a user script does: ultralytics `track()` per frame + embedding each crop on its own
Each stored arm is scored against gt.txt: IDF1 of its appearance segments (motmetrics, IoU 0.5) and the worst
segment purity (the share of a segment's gt-matched boxes that carry its majority id; as the quality test). The
naive loop is scored on its tracks. With --repeat N the rates are medians.
"""
from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from reid_core import crops as crop_ops
from reid_core.chunks import models_for
from reid_core.groundtruth import gt_ids_of_track, idf1, load_mot_gt
from reid_core.ingest import ingest
from reid_core.settings import IngestSettings, Settings
from reid_core.stitching import video_tracks
from reid_core.store import Store
from reid_core.types import Box, Track
from reid_core.video import read_frames
from reid_core.weights import resolve

PETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pets09_s2l1"
VIDEO, GT = PETS / "vtest.avi", PETS / "gt.txt"


def worst_purity(tracks: list[Track], gt) -> float:
    worst = 1.0
    for t in tracks:
        ids = [i for i in gt_ids_of_track(t, gt) if i is not None]
        if ids:
            worst = min(worst, Counter(ids).most_common(1)[0][1] / len(ids))
    return worst


def detector_only(frames: int, settings: IngestSettings) -> tuple[float, list[Track] | None, str]:
    detector = models_for(settings).detector
    t = time.perf_counter()
    n = 0
    for index, image in read_frames(VIDEO, 0, frames - 1):
        n += len(detector.detect(image, index))
    return frames / (time.perf_counter() - t), None, f"{n} boxes"


def full_ingest(settings: IngestSettings) -> Callable[[int], tuple[float, list[Track] | None, str]]:
    def run(frames: int) -> tuple[float, list[Track] | None, str]:
        with tempfile.TemporaryDirectory() as d:
            store = Store(d)
            t = time.perf_counter()
            result = ingest(VIDEO, store, from_frame=0, to_frame=frames - 1, settings=settings)
            fps = frames / (time.perf_counter() - t)
            _, present = store.features_where(store.all_crop_keys())
            segments = video_tracks(store, result.video.video_id, settings=Settings(Path(d), settings))
            return fps, segments, f"{result.crops} crops, {int(present.sum())} with features"
    return run


def naive_loop(settings: IngestSettings) -> Callable[[int], tuple[float, list[Track] | None, str]]:
    """ultralytics' own tracker (BoT-SORT defaults, a fresh model per run so its state starts empty) and one
    embedder call per crop; nothing stored."""
    from ultralytics import YOLO

    embedder = models_for(settings).embedder

    def run(frames: int) -> tuple[float, list[Track] | None, str]:
        model = YOLO(str(resolve(settings.detector.model).path.parent), task="detect")
        model.predict(np.zeros((64, 64, 3), np.uint8), verbose=False)  # load outside the timing
        tracks: dict[int, Track] = {}
        crops = 0
        t = time.perf_counter()
        for index, image in read_frames(VIDEO, 0, frames - 1):
            r = model.track(image, persist=True, classes=[0], conf=settings.detector.conf, verbose=False)[0]
            if r.boxes is None or r.boxes.id is None:
                continue
            for (x1, y1, x2, y2), tid in zip(r.boxes.xyxy.cpu().numpy(), r.boxes.id.cpu().numpy()):
                box = Box.from_xyxy(x1, y1, x2, y2)
                embedder.embed(crop_ops.to_model_inputs([crop_ops.cut(image, box)]))
                crops += 1
                tr = tracks.setdefault(int(tid), Track(int(tid), "", ""))
                tr.frames.append(index)
                tr.boxes.append(box)
                tr.scores.append(1.0)
        return frames / (time.perf_counter() - t), list(tracks.values()), f"{crops} crops"
    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--every", type=int, default=5, help="feature_every of the sampled arms")
    ap.add_argument("--detect-every", type=int, default=2, help="detect_every of the strided arm")
    args = ap.parse_args()
    base = Settings.from_env().ingest
    every_crop = dataclasses.replace(base, feature_every=1, detect_every=1)
    sampled = dataclasses.replace(base, feature_every=args.every, detect_every=1)
    strided = dataclasses.replace(base, feature_every=args.every, detect_every=args.detect_every)
    arms: list[tuple[str, Callable[[int], tuple[float, list[Track] | None, str]]]] = [
        ("detector only, every frame", lambda n: detector_only(n, base)),
        ("full ingest, every crop embedded", full_ingest(every_crop)),
        (f"full ingest, sampled (feature_every={args.every})", full_ingest(sampled)),
        (f"full ingest, sampled + detect_every={args.detect_every}", full_ingest(strided)),
        ("naive loop: ultralytics track() + embed each crop", naive_loop(base)),
    ]
    models_for(base)
    for _, arm in arms[:4]:  # warm-up: compile, caches
        arm(10)
    gt = load_mot_gt(GT)
    frames = range(0, args.frames)
    rates: dict[str, list[float]] = {}
    scored: dict[str, tuple[float, float, str]] = {}
    for _ in range(args.repeat):
        for name, arm in arms:
            fps, tracks, note = arm(args.frames)
            rates.setdefault(name, []).append(fps)
            if tracks is not None:
                scored[name] = (idf1(tracks, gt, frames), worst_purity(tracks, gt), note)
            else:
                scored[name] = (float("nan"), float("nan"), note)
            print(f"  {name}: {fps:.1f} frames/s", flush=True)
    ref = statistics.median(rates[arms[0][0]])
    print(f"\nPETS09-S2L1 frames 0-{args.frames - 1} (768x576), embedder {base.embedder}, {args.repeat} run(s), "
          f"CPU {platform.processor() or platform.machine()}")
    print("| arm | frames/s | x detector | IDF1 | worst purity | stored |")
    print("|---|---|---|---|---|---|")
    for name, _ in arms:
        fps = statistics.median(rates[name])
        f1, pur, note = scored[name]
        print(f"| {name} | {fps:.1f} | {fps / ref:.2f} | {f1:.3f} | {pur:.3f} | {note} |")
    embedder = models_for(base).embedder
    crops = np.random.default_rng(0).integers(0, 256, (256, 256, 128, 3), dtype=np.uint8)
    for batch in (32, 1):
        n = 256 if batch > 1 else 64
        embedder.embed(crops[:batch], batch_size=batch)
        t = time.perf_counter()
        embedder.embed(crops[:n], batch_size=batch)
        print(f"embedder {base.embedder} ({embedder.precision}), batch {batch}: "
              f"{n / (time.perf_counter() - t):.0f} crops/s")


if __name__ == "__main__":
    main()
