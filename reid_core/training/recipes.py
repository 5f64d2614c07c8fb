"""The three things a user trains, as library calls (the CLI and pretrain/ scripts are shells over these):

- `pretrain_moco`: self-supervised MoCo v2 on unlabelled crops (store or folder);
- `finetune`: supervised CE + triplet on labelled crops (Market-layout folder, or store tracks as labels);
- `adapt`: site adaptation from a store with no labels: tracks become pseudo-identities (reid_core.training.
  pseudo_labels), optionally after MoCo on the same crops.

Each writes a resumable run folder (runs/train/NAME: last.pt, metrics.csv, tb/, config.json) and, at the end, a
model file NAME.pt that the embedder, the CLI and the app load by name.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from reid_core.errors import InputError
from reid_core.training.data import TrainData, store_samples
from reid_core.training.engine import Dist, Evaluate, TrainConfig, fit
from reid_core.training.moco import MoCoConfig, MoCoTask
from reid_core.training.pseudo_labels import PseudoLabelConfig, pseudo_label_data
from reid_core.training.supervised import SupervisedConfig, SupervisedTask

DEFAULT_INIT = {"osnet_x0_25": "osnet_x0_25_msmt17", "bot_r50": "random"}
# MoCo v2 uses SGD lr 0.03 from random weights; from already-trained ReID weights 0.01 keeps more of what they know
# (PETS, docs/training.md).
MOCO_TRAIN = TrainConfig(epochs=6, lr=0.01, optimizer="sgd", weight_decay=1e-4)
ADAPT_TRAIN = TrainConfig(epochs=6, lr=1e-4)
INIT_PREFIXES = ("fastreid:", "luperson:", "torchvision:")
Log = Callable[[str], None]


@dataclass
class RunSummary:
    name: str
    objective: str
    arch: str
    init: str
    data: str
    crops: int
    identities: int
    epochs: int
    resumed_from: int
    seconds: float
    model_path: str
    run_dir: str
    history: list[dict] = field(default_factory=list)
    pseudo_labels: dict | None = None
    stages: list[dict] = field(default_factory=list)  # earlier stages of a multi-stage run (adapt with MoCo)

    def to_dict(self) -> dict:
        return asdict(self)


def initial_network(arch: str | None, init: str | None, num_classes: int = 0, log: Log = print):
    """A network to start training from, and a description of where its weights came from.

    init: None (the arch's default: MSMT17 OSNet weights, or random for bot_r50), "random", a manifest embedder
    (osnet_x0_25_msmt17, osnet_x0_25_market1501), a trained model name or .pt path, or fastreid:PATH,
    luperson:PATH, torchvision:PATH for other projects' ResNet-50 checkpoints.
    """
    from reid_core.models import (
        build_network,
        find_trained,
        load_fastreid_checkpoint,
        load_luperson_moco,
        load_model,
        load_torchreid_osnet,
    )
    from reid_core.weights import manifest, resolve

    if init is not None and not init.startswith(INIT_PREFIXES) and init != "random" and init not in manifest():
        path = Path(init) if init.endswith(".pt") else find_trained(init)
        network, meta = load_model(path)
        if arch is not None and arch != network.arch:
            raise InputError(f"{init} is a {network.arch} model; drop --arch or pass --arch {network.arch}")
        network.reset_classifier(num_classes)
        return network, f"trained model {path}"
    arch = arch or "osnet_x0_25"
    init = init or DEFAULT_INIT.get(arch, "random")
    network = build_network(arch)
    if init == "random":
        if arch == "bot_r50":
            log("note: bot_r50 starts from random weights; pass --init luperson:PATH, torchvision:PATH or "
                "fastreid:PATH to start from a pretrained ResNet-50")
        described = "random initialisation"
    elif init.startswith("fastreid:"):
        report = load_fastreid_checkpoint(init.split(":", 1)[1], network)
        described = f"FastReID checkpoint {init.split(':', 1)[1]} ({len(report.mapped)} tensors)"
    elif init.startswith(("luperson:", "torchvision:")):
        report = load_luperson_moco(init.split(":", 1)[1], network)
        described = f"{init.split(':', 1)[0]} ResNet-50 {init.split(':', 1)[1]} ({len(report.mapped)} tensors)"
    else:
        if manifest()[init].get("format") != "torchreid-state-dict" or arch != "osnet_x0_25":
            raise InputError(f"{init} cannot initialise a {arch} network; for osnet_x0_25 use osnet_x0_25_msmt17 "
                             f"or osnet_x0_25_market1501")
        load_torchreid_osnet(resolve(init).path, network)
        described = f"{init} ({resolve(init).path})"
    network.reset_classifier(num_classes)
    return network, described


def _run_dir(name: str, run_dir: str | Path | None) -> Path:
    return Path(run_dir) if run_dir is not None else Path("runs") / "train" / name


def _finish(name: str, objective: str, network, data: TrainData, init_desc: str, config: TrainConfig, result,
            run_dir: Path, out_dir: str | Path | None, extra: dict) -> RunSummary:
    from reid_core.models import save_model, trained_path

    path = trained_path(name, out_dir)
    summary = RunSummary(name, objective, network.arch, init_desc, data.origin, len(data.samples), data.num_classes,
                         config.epochs, result.resumed_from, round(result.seconds, 1), str(path), str(run_dir),
                         result.history, **extra)
    dist = Dist.from_env()
    network.reset_classifier(0)  # the classifier only names training identities; the embedding is the model
    if dist.is_main:
        meta = {k: v for k, v in summary.to_dict().items() if k not in ("history", "model_path")}
        meta.update(created=time.time(), config=asdict(config), last_epoch=result.history[-1] if result.history
                    else {})
        save_model(path, network, meta)
    dist.barrier()  # a following stage on another rank loads this file
    return summary


def pretrain_moco(data: TrainData, name: str, arch: str | None = None, init: str | None = None,
                  config: TrainConfig = MOCO_TRAIN,
                  moco: MoCoConfig = MoCoConfig(), run_dir: str | Path | None = None,
                  out_dir: str | Path | None = None, resume: bool = True, evaluate: Evaluate | None = None,
                  progress: bool = True, log: Log = print) -> RunSummary:
    from reid_core.models import validate_name

    validate_name(name)
    torch.manual_seed(config.seed)
    network, init_desc = initial_network(arch, init, 0, log)
    task = MoCoTask(network, data, moco, seed=config.seed, workers=config.workers)
    run = _run_dir(name, run_dir)
    result = fit(task, config, run, resume, evaluate, progress=progress, log=log)
    return _finish(name, "moco", network, data, init_desc, config, result, run, out_dir, {})


def finetune(data: TrainData, name: str, arch: str | None = None, init: str | None = None,
             config: TrainConfig = TrainConfig(), supervised: SupervisedConfig = SupervisedConfig(),
             run_dir: str | Path | None = None, out_dir: str | Path | None = None, resume: bool = True,
             evaluate: Evaluate | None = None, progress: bool = True, log: Log = print,
             objective: str = "supervised", extra: dict | None = None) -> RunSummary:
    from reid_core.models import validate_name

    validate_name(name)
    if data.num_classes < 2:
        raise InputError(f"supervised training needs at least 2 identities, the data has {data.num_classes}")
    torch.manual_seed(config.seed)
    network, init_desc = initial_network(arch, init, data.num_classes, log)
    task = SupervisedTask(network, data, supervised, seed=config.seed, workers=config.workers)
    run = _run_dir(name, run_dir)
    result = fit(task, config, run, resume, evaluate, progress=progress, log=log)
    return _finish(name, objective, network, data, init_desc, config, result, run, out_dir, extra or {})


def adapt(store_path: str | Path, name: str, video_id: str | None = None, from_frame: int | None = None,
          to_frame: int | None = None, arch: str | None = None, init: str | None = None,
          labels: PseudoLabelConfig = PseudoLabelConfig(),
          config: TrainConfig = ADAPT_TRAIN,
          supervised: SupervisedConfig = SupervisedConfig(),
          moco_epochs: int = 0, moco: MoCoConfig = MoCoConfig(), run_dir: str | Path | None = None,
          out_dir: str | Path | None = None, resume: bool = True, evaluate: Evaluate | None = None,
          progress: bool = True, log: Log = print) -> RunSummary:
    """Adapt a model to the footage in a store without labels (see the module docstring)."""
    from reid_core.models import validate_name

    validate_name(name)
    data, report = pseudo_label_data(str(store_path), video_id, from_frame, to_frame, labels)
    log(f"pseudo-labels: {report.summary()}")
    run = _run_dir(name, run_dir)
    stages = []
    if moco_epochs > 0:
        unlabelled = store_samples(store_path, video_id, from_frame, to_frame)
        stage_name = f"{name}.moco"
        moco_config = replace(MOCO_TRAIN, epochs=moco_epochs, amp=config.amp, workers=config.workers,
                              seed=config.seed, max_steps=config.max_steps)
        first = pretrain_moco(unlabelled, stage_name, arch, init, moco_config, moco, run / "moco",
                              run / "moco", resume, evaluate, progress, log)
        stages.append({k: v for k, v in first.to_dict().items() if k != "stages"})
        init, arch = first.model_path, None
    extra = {"pseudo_labels": asdict(report), "stages": stages}
    return finetune(data, name, arch, init, config, supervised, run / "adapt" if moco_epochs > 0 else run, out_dir,
                    resume, evaluate, progress, log, objective="adapt", extra=extra)
