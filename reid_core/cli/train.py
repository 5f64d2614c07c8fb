"""`reid train moco|supervised|list` and `reid adapt`: shells over reid_core.training.recipes.

The same commands run under torchrun for DDP, through the scripts in pretrain/:
    torchrun --nproc_per_node 2 pretrain/adapt.py --store gallery --name site1
"""
from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from reid_core.cli.common import JsonOpt, defaults, emit, store_path, wants_json
from reid_core.errors import InputError

train_app = typer.Typer(help="Train embedders: MoCo pretraining, supervised fine-tuning; list trained models.",
                        no_args_is_help=False)  # "Missing command" is a usage error (common.run)

Name = Annotated[str, typer.Option("--name", help="Name of the trained model (written as NAME.pt to "
                                   "$REID_WEIGHTS_DIR or weights/; use it with --model NAME anywhere).")]
Arch = Annotated[str | None, typer.Option(help="osnet_x0_25 (default) or bot_r50.")]
Init = Annotated[str | None, typer.Option(help="Starting weights: osnet_x0_25_msmt17 (default for OSNet), "
                                          "osnet_x0_25_market1501, a trained model name, random, "
                                          "fastreid:PATH, luperson:PATH or torchvision:PATH (bot_r50).")]
Epochs = Annotated[int | None, typer.Option(help="Epochs (default depends on the objective).")]
Lr = Annotated[float | None, typer.Option(help="Base learning rate (default depends on the objective).")]
Amp = Annotated[bool, typer.Option("--amp/--no-amp", help="bfloat16 autocast (about 2x faster on CPUs with "
                                   "AVX-512 BF16 and on recent GPUs).")]
Workers = Annotated[int, typer.Option(help="DataLoader worker processes.")]
Seed = Annotated[int, typer.Option(help="Random seed.")]
RunDir = Annotated[Path | None, typer.Option("--run-dir", help="Run folder: checkpoints, metrics.csv, TensorBoard "
                                             "logs (default runs/train/NAME).")]
OutDir = Annotated[Path | None, typer.Option("--out-dir", help="Where NAME.pt goes (default $REID_WEIGHTS_DIR or "
                                             "weights/).")]
Resume = Annotated[bool, typer.Option("--resume/--no-resume", help="Continue from the run folder's last "
                                      "checkpoint.")]
MaxSteps = Annotated[int, typer.Option("--max-steps", help="Cap steps per epoch (0 = whole epoch).")]
ValMot = Annotated[Path | None, typer.Option("--val-mot", help="Score each epoch on this MOT sequence's ReID "
                                             "protocol (gt is only used to score).")]
ValFrames = Annotated[str | None, typer.Option("--val-frames", help="Restrict --val-mot to frames A-B.")]
StoreDir = Annotated[Path | None, typer.Option("--store", help="Train on the crops of this store (also `reid --store "
                                               "DIR train ...` when no --market/--folder is given).")]
FromFrame = Annotated[int | None, typer.Option("--from-frame", help="Store crops from this frame on.")]
ToFrame = Annotated[int | None, typer.Option("--to-frame", help="Store crops up to this frame.")]
Video = Annotated[str | None, typer.Option("--video", help="Store crops of this video id only.")]


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
    train_app.command("moco")(moco_cmd)
    train_app.command("supervised")(supervised_cmd)
    train_app.command("list")(list_cmd)
    train_app.command("text")(text_cmd)
    app.command("adapt")(adapt_cmd)


def _log(message: str) -> None:
    if os.environ.get("RANK", "0") == "0":
        print(message, file=sys.stderr, flush=True)


def _check_name(name: str) -> None:
    """A bad or taken model name is reported before any data is read."""
    from reid_core.models import validate_name

    validate_name(name)


def _setup(default, epochs, lr, amp, workers, seed, max_steps, val_mot, val_frames):
    """The run's TrainConfig (the objective's defaults, overridden by what was given) and its per-epoch scorer."""
    given = {"epochs": epochs, "lr": lr}
    config = replace(default, **{k: v for k, v in given.items() if v is not None}, amp=amp, workers=workers,
                     seed=seed, max_steps=max_steps)
    return config, _validator(val_mot, val_frames)


def _validator(val_mot: Path | None, val_frames: str | None):
    if val_mot is None:
        if val_frames is not None:
            raise InputError("--val-frames needs --val-mot")
        return None
    from reid_core.cli.eval import parse_frame_range
    from reid_core.training.validation import MotValidator

    frames = parse_frame_range(val_frames)
    state: dict = {}

    def evaluate(network):  # built on first use: only rank 0 evaluates, so only rank 0 cuts the crops
        if "v" not in state:
            state["v"] = MotValidator(val_mot, frames)
        return state["v"](network)

    return evaluate


def _emit(summary, json_out: bool) -> None:
    def human(d: dict) -> str:
        last = d["history"][-1] if d["history"] else {}
        lines = [f"trained {d['name']} ({d['objective']}, {d['arch']}, from {d['init']}) on {d['crops']} crops / "
                 f"{d['identities']} identities, {d['epochs']} epochs in {d['seconds']:.0f} s"
                 + (f" (resumed after epoch {d['resumed_from']})" if d["resumed_from"] else "")]
        if last:
            lines.append("last epoch: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                                    for k, v in last.items()))
        lines.append(f"model: {d['model_path']} (use --model {d['name']})")
        lines.append(f"logs: {d['run_dir']}/metrics.csv, {d['run_dir']}/tb")
        return "\n".join(lines)

    if os.environ.get("RANK", "0") == "0":
        emit(summary.to_dict(), json_out, human)


def _data(store: Path | None, market: Path | None, folder: Path | None, video, from_frame, to_frame,
          labelled: bool):
    from reid_core.training import data as td

    if store is None and market is None and folder is None:
        store = defaults().store  # `reid --store DIR train moco`: the global store, when no other data is named
    chosen = [x for x in (store, market, folder) if x is not None]
    if len(chosen) != 1:
        raise InputError("give exactly one data source: --store DIR, --market DIR or --folder DIR")
    if store is not None:
        return td.store_samples(store_path(store), video, from_frame, to_frame)
    if market is not None:
        return td.folder_samples(market, labelled=labelled)
    if labelled:
        raise InputError("--folder is unlabelled images; supervised training needs --market DIR (PID_cCAM names) "
                         "or --store DIR (tracks as identities)")
    assert folder is not None, "exactly one data source was given and it is not store or market"
    return td.folder_samples(folder, labelled=False)


def moco_cmd(
    name: Name,
    store: StoreDir = None,
    market: Annotated[Path | None, typer.Option("--market", help="Market-layout folder (labels ignored).")] = None,
    folder: Annotated[Path | None, typer.Option("--folder", help="Any folder of person crops.")] = None,
    video: Video = None, from_frame: FromFrame = None, to_frame: ToFrame = None,
    arch: Arch = None, init: Init = None, epochs: Epochs = None, lr: Lr = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Crops per step and process.")] = 64,
    queue: Annotated[int, typer.Option(help="Negatives queue length (clipped to the data size).")] = 4096,
    temperature: Annotated[float, typer.Option(help="InfoNCE temperature.")] = 0.2,
    momentum: Annotated[float, typer.Option(help="Key encoder momentum.")] = 0.99,
    track_aware: Annotated[bool, typer.Option("--track-aware/--plain", help="Store crops: never use a crop of "
                                              "the query's own track as its negative.")] = True,
    amp: Amp = False, workers: Workers = 0, seed: Seed = 0, max_steps: MaxSteps = 0,
    val_mot: ValMot = None, val_frames: ValFrames = None,
    run_dir: RunDir = None, out_dir: OutDir = None, resume: Resume = True, json_out: JsonOpt = False,
) -> None:
    """Self-supervised MoCo v2 pretraining on unlabelled person crops."""
    _check_name(name)
    from reid_core.training.moco import MoCoConfig
    from reid_core.training.recipes import MOCO_TRAIN, pretrain_moco

    data = _data(store, market, folder, video, from_frame, to_frame, labelled=False)
    config, evaluate = _setup(MOCO_TRAIN, epochs, lr, amp, workers, seed, max_steps, val_mot, val_frames)
    moco = MoCoConfig(batch_size=batch_size, queue_size=queue, temperature=temperature, momentum=momentum,
                      track_aware=track_aware)
    summary = pretrain_moco(data, name, arch, init, config, moco, run_dir, out_dir, resume, evaluate,
                            progress=not wants_json(json_out), log=_log)
    _emit(summary, json_out)


def supervised_cmd(
    name: Name,
    market: Annotated[Path | None, typer.Option("--market", help="Market-layout folder: bounding_box_train/ with "
                                                "PID_cCAM... names.")] = None,
    store: StoreDir = None,
    video: Video = None, from_frame: FromFrame = None, to_frame: ToFrame = None,
    arch: Arch = None, init: Init = None, epochs: Epochs = None, lr: Lr = None,
    p: Annotated[int, typer.Option("-p", help="Identities per batch.")] = 16,
    k: Annotated[int, typer.Option("-k", help="Crops per identity.")] = 4,
    margin: Annotated[float, typer.Option(help="Triplet margin.")] = 0.3,
    smoothing: Annotated[float, typer.Option(help="Label smoothing.")] = 0.1,
    schedule: Annotated[str, typer.Option(help="cosine or step.")] = "cosine",
    warmup: Annotated[float, typer.Option(help="Warm-up epochs.")] = 1.0,
    amp: Amp = False, workers: Workers = 0, seed: Seed = 0, max_steps: MaxSteps = 0,
    val_mot: ValMot = None, val_frames: ValFrames = None,
    run_dir: RunDir = None, out_dir: OutDir = None, resume: Resume = True, json_out: JsonOpt = False,
) -> None:
    """Supervised fine-tuning: cross-entropy (label smoothing) + batch-hard triplet, BNNeck, PK batches."""
    _check_name(name)
    from reid_core.training.engine import TrainConfig
    from reid_core.training.recipes import finetune
    from reid_core.training.supervised import SupervisedConfig

    data = _data(store, market, None, video, from_frame, to_frame, labelled=True)
    default = TrainConfig(epochs=30, schedule=schedule, warmup_epochs=warmup,
                          step_epochs=(20, 27) if schedule == "step" else ())
    config, evaluate = _setup(default, epochs, lr, amp, workers, seed, max_steps, val_mot, val_frames)
    summary = finetune(data, name, arch, init, config, SupervisedConfig(p=p, k=k, margin=margin, smoothing=smoothing),
                       run_dir, out_dir, resume, evaluate, progress=not wants_json(json_out), log=_log)
    _emit(summary, json_out)


def text_cmd(
    peta: Annotated[Path, typer.Option("--peta", help="PETA folder (subset folders with Label.txt), e.g. "
                                       "../shared/data/peta.")],
    name: Annotated[str, typer.Option("--name", help="Name of the text model (written as text/NAME.pt in "
                                      "$REID_WEIGHTS_DIR or weights/; search uses $REID_TEXT_MODEL, default "
                                      "peta-text).")] = "peta-text",
    embedder: Annotated[str | None, typer.Option("--embedder", help="Embedder whose features the model reads; "
                                                 "must be the one your stores were ingested with (default: the "
                                                 "default embedder).")] = None,
    epochs: Epochs = None, lr: Lr = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Image-caption pairs per step.")] = 128,
    mlm_weight: Annotated[float, typer.Option("--mlm-weight", help="Masked-token auxiliary loss weight "
                                              "(0 = off).")] = 0.1,
    sdm_weight: Annotated[float, typer.Option("--sdm-weight", help="Weight of the SDM loss beside the soft "
                                              "cross-entropy alignment loss.")] = 0.1,
    split_seed: Annotated[int, typer.Option("--split-seed", help="Seed of the train/val/test split by "
                                            "identity.")] = 0,
    seed: Seed = 0, max_steps: MaxSteps = 0,
    run_dir: RunDir = None, out_dir: Annotated[Path | None, typer.Option("--out-dir", help="Where NAME.pt goes "
                                               "(default $REID_WEIGHTS_DIR/text or weights/text).")] = None,
    resume: Resume = True, json_out: JsonOpt = False,
) -> None:
    """Text search that learns: PETA attribute heads + a text encoder aligned to the store's features (CPU)."""
    _check_name(name)
    from reid_core.training.text import TEXT_TRAIN, TextTrainOptions, train_text

    overrides: dict[str, Any] = {k: v for k, v in {"epochs": epochs, "lr": lr}.items() if v is not None}
    config = replace(TEXT_TRAIN, **overrides, seed=seed, max_steps=max_steps)
    summary = train_text(peta, name, embedder, config, TextTrainOptions(batch_size=batch_size,
                                                                        mlm_weight=mlm_weight,
                                                                        sdm_weight=sdm_weight,
                                                                        split_seed=split_seed),
                         run_dir, out_dir, resume, progress=not wants_json(json_out), log=_log)

    def human(d: dict) -> str:
        return "\n".join([
            f"trained text model {d['name']} on {d['train_persons']} PETA persons ({d['train_images']} images, "
            f"features of {d['embedder']}), {d['epochs']} epochs in {d['seconds']:.0f} s "
            f"(embedding {d['embed_seconds']:.0f} s)" + (f", resumed after epoch {d['resumed_from']}"
                                                         if d["resumed_from"] else ""),
            f"validation ({d['val_persons']} persons): {d['validation']}",
            f"held out, never trained or tuned on: {d['test_persons']} persons (split seed {split_seed}); "
            f"score them with bench/text_search.py --peta {peta}",
            f"model: {d['model_path']}", f"logs: {d['run_dir']}/metrics.csv, {d['run_dir']}/tb"])

    emit(summary.to_dict(), json_out, human)


def list_cmd(json_out: JsonOpt = False) -> None:
    """Trained models found in $REID_WEIGHTS_DIR, weights/ and ../shared/weights/."""
    from reid_core.models import list_trained, read_model_file

    rows = []
    for name, path in sorted(list_trained().items()):
        try:
            payload = read_model_file(path)
            meta = payload.get("meta", {})
            rows.append({"name": name, "path": str(path), "arch": payload["arch"], "dim": payload["dim"],
                         "objective": meta.get("objective"), "data": meta.get("data"),
                         "epochs": meta.get("epochs"), "init": meta.get("init")})
        except Exception as e:  # a foreign .pt in the folder: listed with the reason rather than hiding it
            rows.append({"name": name, "path": str(path), "error": str(e)})
    emit(rows, json_out, lambda rs: "\n".join(
        f"{r['name']}: {r.get('arch', '?')} {r.get('objective') or ''} {r['path']}" + (f" ({r['error']})"
                                                                                       if "error" in r else "")
        for r in rs) or "no trained models")


def adapt_cmd(
    name: Name,
    store: Annotated[Path | None, typer.Option("--store", help="Store whose tracks are the training data "
                                               "(default: $REID_STORE or ./gallery).")] = None,
    video: Video = None, from_frame: FromFrame = None, to_frame: ToFrame = None,
    arch: Arch = None, init: Init = None, epochs: Epochs = None, lr: Lr = None,
    moco_epochs: Annotated[int, typer.Option("--moco-epochs", help="MoCo epochs on the same crops first "
                                             "(0 = none).")] = 0,
    min_crops: Annotated[int, typer.Option("--min-crops", help="Shortest usable track segment.")] = 8,
    switch_similarity: Annotated[float | None, typer.Option(
        "--switch-similarity", help="Split a track where its two sides are less alike than this cosine (default: "
                                    "the store embedder's segment-change value, reid_core/calibration.py).")] = None,
    merge_similarity: Annotated[float | None, typer.Option(
        "--merge-similarity", help="Merge tracks that never co-occur and are at least this alike (0 = never; "
                                   "default: the store embedder's decision threshold).")] = None,
    negatives: Annotated[str, typer.Option(help="Triplet negatives: all, or co-occurring (only tracks seen at the "
                                           "same moment).")] = "all",
    p: Annotated[int, typer.Option("-p", help="Pseudo-identities per batch.")] = 16,
    k: Annotated[int, typer.Option("-k", help="Crops per pseudo-identity.")] = 4,
    amp: Amp = False, workers: Workers = 0, seed: Seed = 0, max_steps: MaxSteps = 0,
    val_mot: ValMot = None, val_frames: ValFrames = None,
    run_dir: RunDir = None, out_dir: OutDir = None, resume: Resume = True, json_out: JsonOpt = False,
) -> None:
    """Adapt an embedder to a site's own footage without labels: the store's tracks become pseudo-identities."""
    from reid_core import checks

    for value, what in ((switch_similarity, "--switch-similarity"), (merge_similarity, "--merge-similarity")):
        if value is not None:
            checks.score(value, what)
    _check_name(name)
    # Cosines are on the scale of the embedder whose features the store holds (the pseudo-labels are built on them).
    from reid_core.calibration import calibration_for
    from reid_core.embedding import DEFAULT_MODEL
    from reid_core.store import Store
    from reid_core.training.pseudo_labels import PseudoLabelConfig
    from reid_core.training.recipes import ADAPT_TRAIN, adapt
    from reid_core.training.supervised import SupervisedConfig

    held = {e for r in Store(store_path(store)).runs() if (e := r.settings.get("embedder")) is not None}
    cal = calibration_for(sorted(held)[0] if held else DEFAULT_MODEL)
    labels = PseudoLabelConfig(min_crops=min_crops,
                               switch_similarity=cal.change_similarity if switch_similarity is None
                               else switch_similarity,
                               merge_similarity=cal.threshold if merge_similarity is None else merge_similarity,
                               negatives=negatives)
    config, evaluate = _setup(ADAPT_TRAIN, epochs, lr, amp, workers, seed, max_steps, val_mot, val_frames)
    summary = adapt(store_path(store), name, video, from_frame, to_frame, arch, init, labels, config,
                    SupervisedConfig(p=p, k=k), moco_epochs, run_dir=run_dir, out_dir=out_dir, resume=resume,
                    evaluate=evaluate, progress=not wants_json(json_out), log=_log)
    _emit(summary, json_out)
