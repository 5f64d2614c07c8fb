"""MoCo v2 (He et al. 2020, Chen et al. 2020) self-supervised pretraining on unlabelled person crops.

A query encoder learns to recognise a second augmentation of the same crop (encoded by a slowly moving copy of
itself, the momentum encoder) among a queue of earlier crops' keys, with the InfoNCE loss. Crops from video come in
tracks of near-identical frames; with `track_aware`, queue entries from the query's own track are not used as its
negatives (they are the same person), which plain MoCo would push away. Under DDP the keys
of every rank enter the queue and the key batch is shuffled across ranks before the momentum encoder so batch
norm cannot leak which sample is the positive (MoCo's "shuffling BN"; a single process has no such shuffle).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, Sampler
from torch.utils.data.distributed import DistributedSampler

from reid_core.models import ReIDNetwork
from reid_core.training.data import CropDataset, TrainData, contrastive_transform
from reid_core.training.losses import info_nce


@dataclass(frozen=True)
class MoCoConfig:
    batch_size: int = 64  # per process
    queue_size: int = 4096  # clipped to the data size: a queue longer than the data repeats the same crops
    projection_dim: int = 128
    momentum: float = 0.99  # MoCo's 0.999 assumes ~10^5 steps; short runs on small data need a faster key encoder
    temperature: float = 0.2
    track_aware: bool = True  # store crops: never use a crop of the query's own track as its negative


def _world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate a tensor from all ranks (no gradient: used for keys only)."""
    import torch.distributed as dist

    rank, world = _world()
    if world == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


class MoCo(nn.Module):
    # buffers, registered in __init__ (register_buffer), declared here for the type checker
    queue: torch.Tensor
    queue_ptr: torch.Tensor
    queue_filled: torch.Tensor
    queue_groups: torch.Tensor

    def __init__(self, encoder: ReIDNetwork, config: MoCoConfig = MoCoConfig()):
        super().__init__()
        self.config = config
        dim = encoder.dim
        self.encoder_q = encoder
        self.head_q = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, config.projection_dim))
        self.encoder_k = copy.deepcopy(encoder)
        self.head_k = copy.deepcopy(self.head_q)
        for p in list(self.encoder_k.parameters()) + list(self.head_k.parameters()):
            p.requires_grad = False
        self.register_buffer("queue", F.normalize(torch.randn(config.queue_size, config.projection_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_groups", torch.full((config.queue_size,), -1, dtype=torch.long))

    @torch.no_grad()
    def momentum_update(self) -> None:
        m = self.config.momentum
        for q, k in zip(list(self.encoder_q.parameters()) + list(self.head_q.parameters()),
                        list(self.encoder_k.parameters()) + list(self.head_k.parameters())):
            k.mul_(m).add_(q.detach(), alpha=1 - m)

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor, groups: torch.Tensor | None = None) -> None:
        keys = _gather(keys)
        groups = _gather(groups) if groups is not None else torch.full((len(keys),), -1, dtype=torch.long,
                                                                       device=keys.device)
        n, size = len(keys), len(self.queue)
        idx = (self.queue_ptr + torch.arange(n, device=keys.device)) % size
        self.queue[idx] = keys.to(self.queue.dtype)
        self.queue_groups[idx] = groups
        self.queue_ptr.copy_((self.queue_ptr + n) % size)
        self.queue_filled.copy_(torch.clamp(self.queue_filled + n, max=size))

    @torch.no_grad()
    def _keys(self, images: torch.Tensor) -> torch.Tensor:
        rank, world = _world()
        if world == 1:
            return F.normalize(self.head_k(self.encoder_k(images).global_feat).float(), dim=1)
        import torch.distributed as dist

        everything = _gather(images)
        perm = torch.randperm(len(everything), device=images.device)
        dist.broadcast(perm, src=0)
        mine = perm.view(world, -1)[rank]
        keys = F.normalize(self.head_k(self.encoder_k(everything[mine]).global_feat).float(), dim=1)
        all_keys = _gather(keys)
        unshuffle = torch.argsort(perm)
        return all_keys[unshuffle].view(world, -1, all_keys.shape[1])[rank]

    def forward(self, im_q: torch.Tensor, im_k: torch.Tensor,
                groups: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, accuracy of picking the positive). groups: each crop's track (-1: unknown), for track_aware."""
        q = F.normalize(self.head_q(self.encoder_q(im_q).global_feat).float(), dim=1)
        k = self._keys(im_k)
        # Until the queue has been filled with real keys, its random initial rows are not used as negatives.
        filled = int(self.queue_filled)
        negatives = self.queue[:filled] if filled else self.queue[:1] * 0
        exclude = None
        if self.config.track_aware and groups is not None and filled:
            queued = self.queue_groups[:filled]
            exclude = (groups[:, None] == queued[None, :]) & (groups[:, None] >= 0)
        loss = info_nce(q, k, negatives.clone().detach(), self.config.temperature, exclude)
        with torch.no_grad():
            sims = q @ negatives.t()
            if exclude is not None:
                sims = sims.masked_fill(exclude, float("-inf"))
            acc = ((q * k).sum(1) > sims.amax(1)).float().mean() if filled else torch.ones(())
        self._enqueue(k, groups)
        return loss, acc


class MoCoTask:
    name = "moco"

    def __init__(self, network: ReIDNetwork, data: TrainData, config: MoCoConfig = MoCoConfig(), seed: int = 0,
                 workers: int = 0):
        network.reset_classifier(0)
        queue = min(config.queue_size, max(config.batch_size, len(data.samples)))
        self.config = MoCoConfig(**{**config.__dict__, "queue_size": queue})
        self.moco = MoCo(network, self.config)
        self.dataset = CropDataset(data, contrastive_transform(), views=2)
        self.seed, self.workers = seed, workers

    def module(self) -> nn.Module:
        return self.moco

    def batches(self, epoch: int, rank: int, world_size: int):
        sampler: Sampler[int]
        if world_size > 1:
            sampler = DistributedSampler(self.dataset, world_size, rank, shuffle=True, seed=self.seed, drop_last=True)
            sampler.set_epoch(epoch)
        else:
            sampler = RandomSampler(self.dataset, generator=torch.Generator().manual_seed(self.seed * 7919 + epoch))
        return DataLoader(self.dataset, batch_size=self.config.batch_size, sampler=sampler,
                          num_workers=self.workers, drop_last=True)

    def loss(self, module: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        (im_q, im_k), groups, _ = batch
        loss, acc = module(im_q, im_k, groups)
        return loss, {"contrastive_accuracy": float(acc)}

    def after_step(self) -> None:
        self.moco.momentum_update()

    def export(self) -> ReIDNetwork:
        return self.moco.encoder_q
