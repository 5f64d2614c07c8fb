"""Text -> person retrieval on PETA identities, engine-agnostic (the trainer's validation and bench/text_search.py).

Two protocols over a set of persons (never the training ones when reporting):
  person     one query per person and phrasing (captions.describe_person, EVAL_STYLES); the gallery is every image
             of those persons in the same PETA subset (one camera network, like one store); relevant = that
             person's images. Persons with identical labels get identical queries, so R1 has a ceiling below 1.
  attribute  short queries naming two of a person's facts ("woman with a backpack"); relevant = every gallery
             image whose labels include what is asked (the template protocol).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from reid_core.textlearn.captions import EVAL_STYLES, Caption, attribute_query, describe_person
from reid_core.textlearn.peta import PetaData

# score_fn(queries, gallery image indices) -> (Q, G) scores, higher = better
ScoreFn = Callable[[Sequence[str], np.ndarray], np.ndarray]


@dataclass(frozen=True)
class RetrievalScore:
    mAP: float
    R1: float
    R5: float
    queries: int
    gallery_images: int
    R1_ceiling: float | None = None  # person protocol: best R1 reachable given identical descriptions

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def average_precision(order_relevant: np.ndarray) -> float:
    rel = np.asarray(order_relevant, bool)
    if not rel.any():
        return 0.0
    hits = np.cumsum(rel)
    return float((hits[rel] / (np.flatnonzero(rel) + 1)).mean())


def _rank(scores: np.ndarray, relevant: np.ndarray) -> tuple[float, float, float]:
    # Stable ties broken by index: an engine that gives identical scores gets no credit from luck.
    order = np.argsort(-scores, kind="stable")
    rel = relevant[order]
    return average_precision(rel), float(rel[0]), float(rel[:5].any())


def _by_subset(data: PetaData, persons: set[str]) -> dict[str, np.ndarray]:
    out: dict[str, list[int]] = {}
    for i, im in enumerate(data.images):
        if im.person in persons:
            out.setdefault(im.subset, []).append(i)
    return {k: np.asarray(v) for k, v in sorted(out.items())}


def person_protocol(data: PetaData, persons: set[str], score_fn: ScoreFn,
                    styles: Sequence[str] = EVAL_STYLES) -> RetrievalScore:
    aps, r1s, r5s, ceil, n_gallery = [], [], [], [], 0
    labels = data.labels_of()
    for gallery in _by_subset(data, persons).values():
        n_gallery += len(gallery)
        owners = np.array([data.images[i].person for i in gallery])
        qpersons = sorted(set(owners))
        for style in styles:
            texts = [describe_person(labels[p], style).text for p in qpersons]
            scores = np.asarray(score_fn(texts, gallery))
            for q, p in enumerate(qpersons):
                ap, r1, r5 = _rank(scores[q], owners == p)
                aps.append(ap)
                r1s.append(r1)
                r5s.append(r5)
            ceil.append(len(set(texts)) / len(texts))
    return RetrievalScore(float(np.mean(aps)), float(np.mean(r1s)), float(np.mean(r5s)), len(aps), n_gallery,
                          float(np.mean(ceil)))


def attribute_protocol(data: PetaData, persons: set[str], score_fn: ScoreFn, seed: int = 0,
                       facts: int = 2) -> RetrievalScore:
    rng = np.random.default_rng(seed)
    aps, r1s, r5s, n_gallery = [], [], [], 0
    labels = data.labels_of()
    for gallery in _by_subset(data, persons).values():
        n_gallery += len(gallery)
        glabels = [data.images[i].labels for i in gallery]
        queries: list[Caption] = [attribute_query(labels[p], rng, facts)
                                  for p in sorted({data.images[i].person for i in gallery})]
        scores = np.asarray(score_fn([q.text for q in queries], gallery))
        for q, cap in enumerate(queries):
            relevant = np.array([cap.required <= g for g in glabels])
            ap, r1, r5 = _rank(scores[q], relevant)
            aps.append(ap)
            r1s.append(r1)
            r5s.append(r5)
    return RetrievalScore(float(np.mean(aps)), float(np.mean(r1s)), float(np.mean(r5s)), len(aps), n_gallery)


def head_auc(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-column ROC AUC (NaN where a column has no positive or no negative)."""
    out = np.full(probs.shape[1], np.nan)
    for j in range(probs.shape[1]):
        y = targets[:, j] > 0.5
        n_pos, n_neg = int(y.sum()), int((~y).sum())
        if n_pos == 0 or n_neg == 0:
            continue
        ranks = np.argsort(np.argsort(probs[:, j], kind="stable"), kind="stable") + 1
        out[j] = (ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return out
