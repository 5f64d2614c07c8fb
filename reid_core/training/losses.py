"""The training objectives: identity cross-entropy (with label smoothing), batch-hard triplet, MoCo's InfoNCE."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def identity_loss(logits: torch.Tensor, labels: torch.Tensor, smoothing: float = 0.1) -> torch.Tensor:
    """Cross-entropy over identities; label smoothing keeps the classifier from over-fitting a few hundred ids."""
    return F.cross_entropy(logits, labels, label_smoothing=smoothing)


def batch_hard_triplet(features: torch.Tensor, labels: torch.Tensor, margin: float = 0.3,
                       negatives: torch.Tensor | None = None) -> torch.Tensor:
    """Hermans et al.'s batch-hard triplet loss on Euclidean distances of the (un-normalised) features.

    For each anchor: its farthest positive and closest negative in the batch. `negatives` (B, B bool) optionally
    says which pairs may serve as negatives; by default every pair with different labels. Pseudo-labels from
    tracks need this: two tracks of the same person (a re-entry) have different labels but must not be pushed
    apart, while tracks seen at the same moment certainly are different people. Anchors without a usable
    positive or negative are left out.
    """
    dist = torch.cdist(features, features).clamp_min(1e-12)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos_mask = same & ~eye
    neg_mask = ~same if negatives is None else (negatives & ~same)
    hardest_pos = torch.where(pos_mask, dist, torch.zeros_like(dist)).amax(dim=1)
    hardest_neg = torch.where(neg_mask, dist, torch.full_like(dist, float("inf"))).amin(dim=1)
    valid = pos_mask.any(dim=1) & neg_mask.any(dim=1)
    if not valid.any():
        return features.sum() * 0.0  # keeps the graph (and DDP's gradient hooks) intact
    return F.relu(hardest_pos[valid] - hardest_neg[valid] + margin).mean()


def info_nce(query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor, temperature: float = 0.2,
             exclude: torch.Tensor | None = None) -> torch.Tensor:
    """MoCo's contrastive loss: each query must pick its own key out of {key} + the queue of earlier keys.

    query, key: (B, D) L2-normalised; queue: (K, D) L2-normalised negatives; exclude: (B, K) bool, queue entries
    that must not count as a query's negatives (other crops of its own track: the same person, not a negative).
    """
    positive = (query * key).sum(dim=1, keepdim=True)
    negative = query @ queue.t()
    if exclude is not None:
        negative = negative.masked_fill(exclude, float("-inf"))
    logits = torch.cat([positive, negative], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(query), dtype=torch.long, device=query.device))
