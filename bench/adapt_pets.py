"""Site adaptation on PETS09-S2L1: train on the project's own ingest of frames 0-399 (tracks as pseudo-labels,
no ground truth), score the MOT-ReID protocol (persons) on frames 400-794, against the unadapted MSMT17 weights.
Also a short MoCo run on the same crops, scored the same way.

    .venv/bin/python bench/adapt_pets.py [--epochs 8] [--moco-epochs 4] [--amp/--no-amp]

Writes bench/out/adapt/ (store, run folders with metrics.csv, trained models, results.json). Ground truth is only
read to score (and, separately, to report how pure the pseudo-labels were); training never sees it.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEQ = ROOT.parent / "shared" / "data" / "pets09_s2l1"
OUT = ROOT / "bench" / "out" / "adapt"
os.environ["REID_WEIGHTS_DIR"] = str(OUT / "weights")  # the trained models; shipped weights still resolve

from reid_core.evaluation import datasets as ds  # noqa: E402
from reid_core.evaluation.runner import DiskCache, EvalSettings, MotEvaluation  # noqa: E402
from reid_core.ingest import ingest  # noqa: E402
from reid_core.store import Store  # noqa: E402
from reid_core.training.data import store_samples  # noqa: E402
from reid_core.training.moco import MoCoConfig  # noqa: E402
from reid_core.training.pseudo_labels import PseudoLabelConfig, pseudo_label_data  # noqa: E402
from reid_core.training.recipes import ADAPT_TRAIN, MOCO_TRAIN, adapt, pretrain_moco  # noqa: E402
from reid_core.training.validation import MotValidator  # noqa: E402

TRAIN_FRAMES = (0, 399)
TEST_FRAMES = (400, 794)


def score(evaluation: MotEvaluation, model: str) -> dict:
    out = {}
    for label, settings in (("per-crop", EvalSettings(models=(model,), backend="torch")),
                            ("flip+rerank", EvalSettings(models=(model,), backend="torch", flip=True, rerank=True))):
        r = evaluation.run(settings, with_verification=False).rank
        out[label] = {"mAP": round(r.mAP, 4), "R1": round(r.rank(1), 4), "mINP": round(r.mINP, 4)}
    return out


def pseudo_label_purity(store_path: Path) -> dict:
    """How often a pseudo-identity's crops are its majority person (gt read here only, for the report)."""
    data, _ = pseudo_label_data(str(store_path), config=PseudoLabelConfig())
    gt, _ = ds.read_gt(SEQ / "gt.txt")
    persons = ds.read_persons(SEQ / "persons.json")
    by_frame = defaultdict(list)
    for b in gt:
        by_frame[b.frame - 1].append(b)
    crops = {c.key: c for c in Store(store_path).get_crops([s.source for s in data.samples], jpeg=False)}
    per_label: dict[int, Counter] = defaultdict(Counter)
    for s in data.samples:
        c = crops[s.source]
        match = max(by_frame.get(c.frame, []), key=lambda g: c.box.iou(g.box), default=None)
        person = persons.get(match.track) if match is not None and c.box.iou(match.box) >= 0.5 else None
        if person is not None:
            per_label[s.label][person] += 1
    matched = sum(sum(c.values()) for c in per_label.values())
    majority = sum(c.most_common(1)[0][1] for c in per_label.values())
    return {"pseudo_identities": data.num_classes, "crops_matched_to_gt": matched,
            "purity": round(majority / max(1, matched), 4),
            "persons_covered": len({c.most_common(1)[0][0] for c in per_label.values()})}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=ADAPT_TRAIN.epochs)
    ap.add_argument("--moco-epochs", type=int, default=MOCO_TRAIN.epochs)
    ap.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--skip-moco", action="store_true")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    store_path = OUT / "store"
    t = time.time()
    r = ingest(SEQ / "vtest.avi", Store(store_path), from_frame=TRAIN_FRAMES[0], to_frame=TRAIN_FRAMES[1])
    print(f"ingest frames {TRAIN_FRAMES[0]}-{TRAIN_FRAMES[1]}: {r.tracks} tracks, {r.crops} crops "
          f"({'reused' if r.reused else f'{time.time() - t:.0f} s'})", flush=True)
    purity = pseudo_label_purity(store_path)
    print(f"pseudo-labels vs gt (report only): {purity}", flush=True)

    evaluation = MotEvaluation(SEQ, cache=DiskCache(None), frames=TEST_FRAMES)
    validator = MotValidator(SEQ, TEST_FRAMES)
    results: dict = {"train_frames": TRAIN_FRAMES, "test_frames": TEST_FRAMES, "pseudo_labels_vs_gt": purity,
                     "test_protocol": dict(evaluation.protocol.counts().__dict__)}
    results["unadapted"] = score(evaluation, "osnet_x0_25_msmt17")
    print(f"unadapted osnet_x0_25_msmt17: {results['unadapted']}", flush=True)

    config = replace(ADAPT_TRAIN, epochs=args.epochs, amp=args.amp)
    summary = adapt(store_path, "pets_adapted", config=config, run_dir=OUT / "runs" / "pets_adapted",
                    out_dir=OUT / "weights", resume=False, evaluate=validator, progress=False)
    results["adapted"] = {**score(evaluation, "pets_adapted"), "train_seconds": summary.seconds,
                          "pseudo_labels": summary.pseudo_labels, "history": summary.history}
    print(f"adapted ({summary.seconds:.0f} s): {results['adapted']['per-crop']} / "
          f"{results['adapted']['flip+rerank']}", flush=True)

    if not args.skip_moco:
        unlabelled = store_samples(store_path)
        moco_cfg = replace(MOCO_TRAIN, epochs=args.moco_epochs, amp=args.amp)
        for key, name, track_aware in (("moco_plain", "pets_moco_plain", False), ("moco", "pets_moco", True)):
            run = pretrain_moco(unlabelled, name, config=moco_cfg, moco=MoCoConfig(track_aware=track_aware),
                                run_dir=OUT / "runs" / name, out_dir=OUT / "weights", resume=False,
                                evaluate=validator, progress=False)
            results[key] = {**score(evaluation, name), "train_seconds": run.seconds, "history": run.history}
            print(f"{key} ({run.seconds:.0f} s): {results[key]['per-crop']} / {results[key]['flip+rerank']}",
                  flush=True)
        # adaptation starting from the track-aware MoCo weights (reid adapt --moco-epochs N does both in one go)
        both = adapt(store_path, "pets_moco_adapted", init=str(OUT / "weights" / "pets_moco.pt"), config=config,
                     run_dir=OUT / "runs" / "pets_moco_adapted", out_dir=OUT / "weights", resume=False,
                     evaluate=validator, progress=False)
        results["moco_adapted"] = {**score(evaluation, "pets_moco_adapted"), "train_seconds": both.seconds,
                                   "history": both.history}
        print(f"moco+adapt ({both.seconds:.0f} s): {results['moco_adapted']['per-crop']} / "
              f"{results['moco_adapted']['flip+rerank']}", flush=True)

    (OUT / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print()
    print(f"{'model (scored on frames 400-794)':44s} {'per-crop mAP':>12s} {'R1':>6s} {'flip+rerank mAP':>16s} "
          f"{'R1':>6s} {'train s':>8s}")
    for key, label in (("unadapted", "osnet_x0_25_msmt17 (unadapted)"), ("adapted", "adapted on 0-399 tracks"),
                       ("moco_plain", "MoCo v2 on 0-399 crops (plain)"),
                       ("moco", "MoCo v2, track-aware negatives"),
                       ("moco_adapted", "track-aware MoCo, then adapted")):
        if key in results:
            r = results[key]
            secs = r.get("train_seconds")
            print(f"{label:44s} {r['per-crop']['mAP']:12.3f} {r['per-crop']['R1']:6.3f} "
                  f"{r['flip+rerank']['mAP']:16.3f} {r['flip+rerank']['R1']:6.3f} "
                  f"{'' if secs is None else f'{secs:.0f}':>8s}")
    print(f"results: {OUT / 'results.json'}")


if __name__ == "__main__":
    main()
