"""The training loop every objective shares: distributed set-up, optimiser and schedule, resumable checkpoints,
per-epoch logs (CSV + TensorBoard) and a progress bar.

Run a script once for one process, or under `torchrun --nproc_per_node N` for DDP: the process group is read from
torchrun's environment (gloo on CPU, nccl on GPU). Only rank 0 writes logs and checkpoints.
"""
from __future__ import annotations

import csv
import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from reid_core.errors import InputError

CHECKPOINT_FORMAT = "reid-studio-train/1"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    optimizer: str = "adam"  # adam | sgd
    schedule: str = "cosine"  # cosine | step
    warmup_epochs: float = 1.0  # linear warm-up from 10% of lr
    step_epochs: tuple[int, ...] = ()  # step schedule: multiply lr by `gamma` at these epochs
    gamma: float = 0.1
    seed: int = 0
    amp: bool = False  # bfloat16 autocast: ~2x faster on CPUs with AVX-512 BF16/AMX, and on recent GPUs
    workers: int = 0  # DataLoader worker processes
    max_steps: int = 0  # per epoch; 0 = the whole epoch (small values for smoke tests)

    def check(self) -> None:
        if self.epochs < 1 or self.lr <= 0 or self.weight_decay < 0 or self.warmup_epochs < 0:
            raise InputError("epochs must be >= 1, lr > 0, weight decay and warm-up >= 0")
        if self.optimizer not in ("adam", "sgd"):
            raise InputError(f"optimizer must be adam or sgd, got {self.optimizer!r}")
        if self.schedule not in ("cosine", "step"):
            raise InputError(f"schedule must be cosine or step, got {self.schedule!r}")


class Task(Protocol):
    """One objective. The engine owns the loop; the task owns the model, the data and the loss."""

    name: str

    def module(self) -> nn.Module:
        """Everything with trainable parameters (wrapped in DDP when distributed)."""

    def batches(self, epoch: int, rank: int, world_size: int) -> Iterable:
        """This rank's batches for `epoch` (the same sequence when an epoch is re-run after a resume)."""

    def loss(self, module: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss and its named parts (for the logs). `module` is `module()`, possibly DDP-wrapped."""

    def after_step(self) -> None:
        """Called after each optimiser step (MoCo's momentum encoder)."""

    def export(self) -> nn.Module:
        """The network to save for the embedder (a reid_core.models ReIDNetwork)."""


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Dist:
        """torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; without them this is a single process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        cuda = torch.cuda.is_available()
        if world == 1:
            return cls(device=torch.device("cuda" if cuda else "cpu"))
        import torch.distributed as dist

        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
        device = torch.device("cuda", local) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        return cls(rank, world, local, device)

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average logged scalars over ranks, so rank 0's log describes the whole run."""
        if self.world_size == 1 or not values:
            return values
        import torch.distributed as dist

        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return {k: float(v) / self.world_size for k, v in zip(keys, t.tolist())}


def lr_factor(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Multiplier of the base lr at a global step: linear warm-up, then cosine to 1% or step decay."""
    epoch = step / max(1, steps_per_epoch)
    if epoch < config.warmup_epochs:
        return 0.1 + 0.9 * epoch / config.warmup_epochs
    if config.schedule == "step":
        return config.gamma ** sum(epoch >= e for e in config.step_epochs)
    span = max(1e-9, config.epochs - config.warmup_epochs)
    progress = min(1.0, (epoch - config.warmup_epochs) / span)
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))


def _optimizer(config: TrainConfig, module: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in module.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay, nesterov=True)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


@dataclass
class TrainResult:
    out_dir: Path
    epochs_run: int
    resumed_from: int  # epoch the run resumed after (0: fresh start)
    history: list[dict]  # one row per epoch: epoch, loss parts, lr, seconds, eval metrics
    seconds: float


class Logger:
    """metrics.csv (one row per epoch) and TensorBoard event files; rank 0 only."""

    def __init__(self, out_dir: Path, enabled: bool, tensorboard: bool = True):
        self.path = out_dir / "metrics.csv"
        self.enabled = enabled
        self.writer = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(out_dir / "tb"))
            except ImportError:  # tensorboard is a declared dependency; CSV still works without it
                self.writer = None

    def history(self) -> list[dict]:
        if not self.path.is_file():
            return []
        with open(self.path, newline="") as f:
            return [{k: _num(v) for k, v in row.items()} for row in csv.DictReader(f)]

    def epoch(self, row: dict, step: int) -> None:
        if not self.enabled:
            return
        rows = [r for r in self.history() if int(r["epoch"]) < row["epoch"]] + [row]
        fields = list(dict.fromkeys(k for r in rows for k in r))
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:  # rewritten whole: a resumed run drops rows of the redone epoch
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
        tmp.replace(self.path)
        if self.writer is not None:
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)):
                    self.writer.add_scalar(k, v, row["epoch"])
            self.writer.flush()

    def step(self, values: dict[str, float], step: int) -> None:
        if self.enabled and self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(f"step/{k}", v, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _num(v: str):
    try:
        f = float(v)
        return int(f) if f.is_integer() and "." not in v and "e" not in v else f
    except (TypeError, ValueError):
        return v


def save_checkpoint(path: Path, state: dict) -> None:
    """Plain tensors and Python scalars only (loadable with weights_only=True); written atomically."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a truncated or foreign file
        raise InputError(f"{path}: not a readable training checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: not a reid-studio training checkpoint (format {CHECKPOINT_FORMAT})")
    return state


Evaluate = Callable[[nn.Module], dict[str, float]]


def fit(task: Task, config: TrainConfig, out_dir: str | Path, resume: bool = True, evaluate: Evaluate | None = None,
        eval_every: int = 1, progress: bool = True, log: Callable[[str], None] = print) -> TrainResult:
    """Train `task` for config.epochs; checkpoint after every epoch to out_dir/last.pt and continue from it when
    `resume` (a finished run is not repeated). `evaluate(network)` runs on rank 0 after every `eval_every` epochs."""
    config.check()
    t0 = time.time()
    dist = Dist.from_env()
    out_dir = Path(out_dir)
    if dist.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps({"task": task.name, **asdict(config)}, indent=1))
    dist.barrier()

    module = task.module().to(dist.device)
    optimizer = _optimizer(config, module)
    start_epoch, step = 0, 0
    ckpt_path = out_dir / "last.pt"
    if resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path)
        if state["task"] != task.name:
            raise InputError(f"{ckpt_path} is a {state['task']!r} run, not {task.name!r}; use another output "
                             f"folder or --no-resume")
        module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, step = int(state["epoch"]), int(state["step"])
        if dist.is_main:
            log(f"resuming {task.name} after epoch {start_epoch} from {ckpt_path}")
    wrapped: nn.Module = module
    if dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        wrapped = DistributedDataParallel(module, device_ids=[dist.local_rank] if dist.device.type == "cuda" else None)
    logger = Logger(out_dir, dist.is_main)
    amp_dtype = torch.bfloat16
    try:
        for epoch in range(start_epoch + 1, config.epochs + 1):
            # Seeded per (epoch, rank): a resumed run draws the same augmentations as an uninterrupted one.
            torch.manual_seed(config.seed * 100_003 + epoch * 1_009 + dist.rank)
            batches = task.batches(epoch, dist.rank, dist.world_size)
            steps_per_epoch = _len(batches, config.max_steps)
            module.train()
            sums: dict[str, float] = defaultdict(float)
            count = 0
            te = time.time()
            bar = _bar(progress and dist.is_main, steps_per_epoch, f"{task.name} epoch {epoch}/{config.epochs}")
            for i, batch in enumerate(batches):
                if config.max_steps and i >= config.max_steps:
                    break
                for group in optimizer.param_groups:
                    group["lr"] = config.lr * lr_factor(config, step, steps_per_epoch)
                with torch.autocast(dist.device.type, dtype=amp_dtype, enabled=config.amp):
                    loss, parts = task.loss(wrapped, _to(batch, dist.device))
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"{task.name}: loss became {loss.item()} at epoch {epoch} step {i}; "
                                             f"lower the learning rate or turn off --amp")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                task.after_step()
                step += 1
                count += 1
                for k, v in {"loss": float(loss.detach()), **parts}.items():
                    sums[k] += v
                if bar is not None:
                    bar.set_postfix(loss=f"{sums['loss'] / count:.4f}")
                    bar.update(1)
                logger.step({"loss": float(loss.detach()), "lr": optimizer.param_groups[0]["lr"]}, step)
            if bar is not None:
                bar.close()
            means = dist.mean({k: v / max(1, count) for k, v in sums.items()})
            row = {"epoch": epoch, "step": step, "lr": optimizer.param_groups[0]["lr"], **means,
                   "seconds": round(time.time() - te, 2)}
            if evaluate is not None and dist.is_main and (epoch % eval_every == 0 or epoch == config.epochs):
                net = task.export()
                was_training = net.training
                net.eval()
                with torch.no_grad():
                    row.update(evaluate(net))
                net.train(was_training)
            if dist.is_main:
                logger.epoch(row, step)
                save_checkpoint(ckpt_path, {
                    "format": CHECKPOINT_FORMAT, "task": task.name, "epoch": epoch, "step": step,
                    "module": module.state_dict(), "optimizer": optimizer.state_dict(),
                    "config": json.dumps(asdict(config)),
                })
                log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
            dist.barrier()
    finally:
        logger.close()
    return TrainResult(out_dir, config.epochs - start_epoch, start_epoch, logger.history() if dist.is_main else [],
                       time.time() - t0)


def _len(batches, max_steps: int) -> int:
    try:
        n = len(batches)
    except TypeError:
        n = 0
    return min(n, max_steps) if max_steps else n


def _bar(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total or None, desc=desc, leave=False, dynamic_ncols=True)


def _to(batch, device: torch.device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(b, device) for b in batch)
    return batch
