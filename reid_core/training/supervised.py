"""Supervised fine-tuning (BoT recipe): identity cross-entropy with label smoothing on the BNNeck feature plus a
batch-hard triplet loss on the pooled feature, over P identities x K crops per batch."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from reid_core.models import ReIDNetwork
from reid_core.training.data import CropDataset, PKSampler, TrainData, supervised_transform
from reid_core.training.losses import batch_hard_triplet, identity_loss


@dataclass(frozen=True)
class SupervisedConfig:
    p: int = 16  # identities per batch
    k: int = 4  # crops per identity
    smoothing: float = 0.1
    margin: float = 0.3
    id_weight: float = 1.0
    triplet_weight: float = 1.0


class SupervisedTask:
    name = "supervised"

    def __init__(self, network: ReIDNetwork, data: TrainData, config: SupervisedConfig = SupervisedConfig(),
                 seed: int = 0, workers: int = 0):
        self.network, self.data, self.config, self.seed, self.workers = network, data, config, seed, workers
        if network.num_classes != data.num_classes:
            network.reset_classifier(data.num_classes)
        self.dataset = CropDataset(data, supervised_transform())
        self.labels = data.labels()
        known = data.known_different
        self.known_different = None if known is None else torch.from_numpy(np.asarray(known, bool))

    def module(self) -> nn.Module:
        return self.network

    def batches(self, epoch: int, rank: int, world_size: int):
        sampler = PKSampler(self.labels, self.config.p, self.config.k, self.seed, rank, world_size)
        sampler.set_epoch(epoch)
        return DataLoader(self.dataset, batch_size=sampler.batch_size, sampler=sampler, num_workers=self.workers,
                          drop_last=True, persistent_workers=False)

    def loss(self, module: nn.Module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        images, labels, _ = batch
        out = module(images)
        c = self.config
        negatives = None
        if self.known_different is not None:
            kd = self.known_different.to(labels.device)
            negatives = kd[labels][:, labels]
        id_loss = identity_loss(out.logits.float(), labels, c.smoothing)
        tri_loss = batch_hard_triplet(out.global_feat.float(), labels, c.margin, negatives)
        with torch.no_grad():
            acc = (out.logits.argmax(1) == labels).float().mean()
        total = c.id_weight * id_loss + c.triplet_weight * tri_loss
        return total, {"id_loss": float(id_loss.detach()), "triplet_loss": float(tri_loss.detach()),
                       "accuracy": float(acc)}

    def after_step(self) -> None:
        pass

    def export(self) -> ReIDNetwork:
        return self.network
