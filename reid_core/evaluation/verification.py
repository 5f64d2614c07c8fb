"""Verification view: every query-gallery pair is a yes/no decision at a similarity threshold.

Pairs follow the ranking protocol (same person *and* camera, and junk gallery items, are left out), so the ROC
describes the same comparisons the CMC does. A pair is accepted when its similarity is strictly above the
threshold; the threshold for FAR f is the lowest one that accepts at most floor(f * impostor pairs) impostors, so
the reported FAR never exceeds the target. A target below one impostor pair is not measurable and reported as
None rather than as a number the data cannot support.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reid_core.errors import InputError
from reid_core.evaluation.metrics import JUNK_PID

FAR_TARGETS = (1e-1, 1e-2, 1e-3, 1e-4)


@dataclass(frozen=True)
class OperatingPoint:
    far_target: float
    tar: float | None  # None: fewer than 1 / far_target impostor pairs, so this FAR cannot be resolved
    far: float | None  # the FAR actually reached (<= far_target)
    threshold: float | None  # similarity; accept when similarity > threshold


@dataclass(frozen=True)
class RocCurve:
    far: np.ndarray  # increasing
    tar: np.ndarray


@dataclass(frozen=True)
class VerificationResult:
    num_genuine: int
    num_impostor: int
    eer: float
    eer_threshold: float
    auc: float
    points: tuple[OperatingPoint, ...]
    roc: RocCurve

    def tar_at(self, far: float) -> float | None:
        for p in self.points:
            if np.isclose(p.far_target, far):
                return p.tar
        raise KeyError(f"no operating point at FAR {far:g}; computed: {[p.far_target for p in self.points]}")


def pair_scores(similarity, q_pids, g_pids, q_camids, g_camids) -> tuple[np.ndarray, np.ndarray]:
    """(genuine similarities, impostor similarities) over the evaluated pairs, as float32 1-D arrays."""
    s = np.asarray(similarity, np.float32)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    if s.shape != (len(q_pids), len(g_pids)):
        raise InputError(f"similarity matrix shape {s.shape} does not match {len(q_pids)} queries x "
                         f"{len(g_pids)} gallery items")
    if not np.isfinite(s).all():
        raise InputError("the similarity matrix has NaN or infinite entries")
    q_ok = q_pids != JUNK_PID
    g_ok = g_pids != JUNK_PID
    s, q_pids, q_camids = s[q_ok], q_pids[q_ok], q_camids[q_ok]
    s, g_pids, g_camids = s[:, g_ok], g_pids[g_ok], g_camids[g_ok]
    same_pid = q_pids[:, None] == g_pids[None, :]
    same_cam = q_camids[:, None] == g_camids[None, :]
    return s[same_pid & ~same_cam], s[~same_pid]


def verify(similarity, q_pids, g_pids, q_camids, g_camids, far_targets=FAR_TARGETS,
           curve_points: int = 200) -> VerificationResult:
    """ROC, TAR at each target FAR, EER and AUC; `similarity` is larger-is-more-alike (e.g. cosine)."""
    genuine, impostor = pair_scores(similarity, q_pids, g_pids, q_camids, g_camids)
    if len(genuine) == 0 or len(impostor) == 0:
        raise InputError(f"verification needs both genuine and impostor pairs (got {len(genuine)} genuine, "
                         f"{len(impostor)} impostor)")
    gen = np.sort(genuine)
    imp_desc = np.sort(impostor)[::-1]
    n_imp, n_gen = len(imp_desc), len(gen)

    def tar_above(threshold: np.ndarray) -> np.ndarray:
        return (n_gen - np.searchsorted(gen, threshold, side="right")) / n_gen

    def far_above(threshold: np.ndarray) -> np.ndarray:
        return np.searchsorted(-imp_desc, -threshold, side="left") / n_imp  # impostors strictly above

    points = []
    for f in far_targets:
        allowed = int(np.floor(f * n_imp + 1e-9))
        if allowed < 1:
            points.append(OperatingPoint(float(f), None, None, None))
            continue
        # Accepting > imp_desc[allowed] lets through at most `allowed` impostors (fewer when scores tie).
        thr = float(imp_desc[allowed]) if allowed < n_imp else -np.inf
        points.append(OperatingPoint(float(f), float(tar_above(np.array([thr]))[0]),
                                     float(far_above(np.array([thr]))[0]), thr))

    # ROC at every distinct score is exact but huge for Market-sized inputs; thresholds at log-spaced impostor
    # ranks (plus every genuine score for the high-FAR end) keep the plotted curve faithful and small.
    ks = np.unique(np.concatenate([np.geomspace(1, n_imp, curve_points).astype(np.int64) - 1, [0, n_imp - 1]]))
    thresholds = np.concatenate([imp_desc[ks], gen, [-np.inf, np.inf]])
    thresholds = np.unique(thresholds)
    far = far_above(thresholds)
    tar = tar_above(thresholds)
    order = np.lexsort((tar, far))
    far, tar = far[order], tar[order]
    # AUC exactly, as the Mann-Whitney statistic: P(genuine > impostor) + P(tie) / 2
    imp_asc = imp_desc[::-1]
    below = np.searchsorted(imp_asc, gen, side="left").astype(np.float64)
    ties = np.searchsorted(imp_asc, gen, side="right") - below
    auc = float((below.sum() + 0.5 * ties.sum()) / (n_gen * n_imp))

    # EER: where FAR (falling with the threshold) meets FRR (rising). FRR only moves at genuine scores, so those
    # plus an even sample of impostor scores resolve the crossing to within one genuine pair.
    cand = np.unique(np.concatenate([gen, imp_desc[np.linspace(0, n_imp - 1, min(n_imp, 20_000)).astype(np.int64)]]))
    frr = 1 - tar_above(cand)
    fa = far_above(cand)
    i = int(np.argmin(np.abs(frr - fa)))
    eer = float((frr[i] + fa[i]) / 2)
    return VerificationResult(n_gen, n_imp, eer, float(cand[i]), auc, tuple(points), RocCurve(far, tar))
