"""Scoring a network while it trains: the MOTChallenge-as-ReID protocol (reid_core.evaluation) on a held-out part
of a sequence, per crop, straight from the in-memory network. Ground truth is only read here, to score; it never
reaches the training data."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from reid_core.evaluation import datasets as ds
from reid_core.evaluation.metrics import distance, evaluate_rank
from reid_core.images import IMAGENET_MEAN, IMAGENET_STD


@torch.no_grad()
def embed_crops(network: torch.nn.Module, crops: np.ndarray, batch_size: int = 64, flip: bool = False) -> np.ndarray:
    """(N, 256, 128, 3) RGB uint8 -> (N, D) L2-normalised, the way the embedder computes features."""
    device = next(network.parameters()).device
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    out = []
    for i in range(0, len(crops), batch_size):
        x = torch.from_numpy(crops[i:i + batch_size]).to(device).permute(0, 3, 1, 2).float().div(255)
        x = (x - mean) / std
        f = torch.nn.functional.normalize(network(x).float(), dim=1)
        if flip:
            f = torch.nn.functional.normalize(f + torch.nn.functional.normalize(network(x.flip(3)).float(), dim=1),
                                              dim=1)
        out.append(f.cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


class MotValidator:
    """mAP / rank-1 / mINP of a network on a MOT sequence's protocol, optionally restricted to a frame range.
    The crops are cut once; each call only embeds them."""

    def __init__(self, root: str | Path, frames: tuple[int, int] | None = None, use_persons: bool = True):
        self.protocol = ds.load_mot(root, use_persons, frames)
        q, g = self.protocol.query, self.protocol.gallery
        self.crops = ds.cut_crops(self.protocol.sequence, np.concatenate([q.frames, g.frames]), q.boxes + g.boxes)

    def __call__(self, network: torch.nn.Module) -> dict[str, float]:
        was_training = network.training
        network.eval()
        try:
            f = embed_crops(network, self.crops)
        finally:
            network.train(was_training)
        q, g = self.protocol.query, self.protocol.gallery
        r = evaluate_rank(distance(f[: len(q)], f[len(q):]), q.pids, g.pids, q.camids, g.camids)
        return {"val_mAP": round(r.mAP, 4), "val_R1": round(r.rank(1), 4), "val_mINP": round(r.mINP, 4)}
