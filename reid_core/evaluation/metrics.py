"""mAP, CMC and mINP under the Market-1501 protocol, vectorised.

Protocol (as Zheng et al.'s Market-1501 code, torchreid and FastReID apply it):
- for each query, gallery items with the query's person id *and* camera are ignored (they are the same shot, not
  a re-identification);
- gallery items with person id -1 ("junk": bad detections) are ignored for every query, as in the original
  Market-1501 evaluation; torchreid drops them when it loads the dataset, which gives the same numbers;
- person id 0 (Market's "distractor" boxes) is an ordinary non-matching gallery item;
- a query with no true match left in the gallery is skipped (it has no defined AP) and counted in `num_skipped`.

mINP (Ye et al. 2021, "Deep Learning for Person Re-identification: A Survey and Outlook") is the mean over queries
of  #true matches / rank of the hardest (last) true match : how much of the list an operator must read to find
every appearance.

Ties in distance are broken by gallery order (a stable sort), so the numbers are deterministic; torchreid uses an
unstable argsort, so the two agree exactly whenever a query's true and false matches have no equal distances.

Speed: a full argsort of every row is what makes Python evaluators slow (3368 x 15913 is 53.6 M elements). The AP,
CMC and INP of a query only need the rank of each true match, i.e. how many kept false matches are closer than
it. So each block of rows sorts its false-match distances by value only (numpy's SIMD sort, no argsort) and
each true match finds its place among them with one binary search; rows where a false match ties a true match
exactly fall back to a stable argsort of that row.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reid_core.errors import InputError
from reid_core.vectors import l2_normalize

JUNK_PID = -1
DISTRACTOR_PID = 0
CMC_RANKS = (1, 5, 10, 20)


@dataclass(frozen=True)
class RankResult:
    """Per-query figures (for the queries that have a true match) and their means."""

    mAP: float
    mINP: float
    cmc: np.ndarray  # cmc[k] = fraction of evaluated queries whose first true match is within the top k+1
    num_query: int
    num_evaluated: int
    num_skipped: int  # queries with no true match in the gallery (after the exclusions)
    evaluated: np.ndarray  # bool per query
    ap: np.ndarray  # per evaluated query
    inp: np.ndarray
    first_rank: np.ndarray  # 0-based rank of the first true match, per evaluated query
    num_matches: np.ndarray  # true matches per evaluated query

    def rank(self, k: int) -> float:
        """CMC at rank k (1-based); a rank past the gallery counts every evaluated query as found."""
        if k < 1:
            raise InputError(f"CMC ranks start at 1, got {k}")
        if self.num_evaluated == 0:
            return float("nan")
        return float(np.mean(self.first_rank < k))


def _as_1d(name: str, a, n: int) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 1 or len(a) != n:
        raise InputError(f"{name} must be a 1-D array of length {n}, got shape {a.shape}")
    return a


def check_inputs(distmat, q_pids, g_pids, q_camids, g_camids) -> tuple[np.ndarray, ...]:
    d = np.asarray(distmat)
    if d.ndim != 2:
        raise InputError(f"the distance matrix must be 2-D (queries x gallery), got shape {d.shape}")
    if not np.issubdtype(d.dtype, np.floating):
        d = d.astype(np.float64)
    if not np.isfinite(d).all():
        raise InputError("the distance matrix has NaN or infinite entries (empty or zero features?)")
    nq, ng = d.shape
    return (d, _as_1d("q_pids", q_pids, nq), _as_1d("g_pids", g_pids, ng), _as_1d("q_camids", q_camids, nq),
            _as_1d("g_camids", g_camids, ng))


def match_ranks(distmat, q_pids, g_pids, q_camids, g_camids, rows_per_block: int = 256) -> list[np.ndarray | None]:
    """For each query, the sorted 0-based ranks of its true matches among the kept gallery items (None: no match).

    This is the one expensive step; every rank metric is a cheap function of these ranks.
    """
    d, q_pids, g_pids, q_camids, g_camids = check_inputs(distmat, q_pids, g_pids, q_camids, g_camids)
    nq = d.shape[0]
    g_junk = g_pids == JUNK_PID
    out: list[np.ndarray | None] = []
    for start in range(0, nq, rows_per_block):
        stop = min(nq, start + rows_per_block)
        same_pid = g_pids[None, :] == q_pids[start:stop, None]
        ignore = (same_pid & (g_camids[None, :] == q_camids[start:stop, None])) | g_junk[None, :]
        true = same_pid & ~ignore
        # Sorted false-match distances per row (true and ignored items pushed to +inf): numpy's SIMD sort of a
        # whole block is several times faster than per-row argsorts, and a true match's rank is then just
        # (true matches before it) + (false matches before it), one binary search each.
        false_sorted = np.sort(np.where(same_pid | ignore, np.inf, d[start:stop]), axis=1)
        for r in range(stop - start):
            t_idx = np.flatnonzero(true[r])
            if q_pids[start + r] == JUNK_PID or len(t_idx) == 0:
                out.append(None)
                continue
            row = d[start + r]
            t = np.sort(row[t_idx])
            before = np.searchsorted(false_sorted[r], t, side="left")
            if np.any(np.searchsorted(false_sorted[r], t, side="right") != before):
                # a false match at exactly a true match's distance: order those two by gallery index
                out.append(_ranks_by_sort(row, true[r], ~same_pid[r] & ~ignore[r]))
                continue
            out.append(np.arange(len(t)) + before)
    return out


def _ranks_by_sort(row: np.ndarray, true: np.ndarray, false: np.ndarray) -> np.ndarray:
    keep = np.flatnonzero(true | false)
    order = keep[np.argsort(row[keep], kind="stable")]
    return np.flatnonzero(true[order])


def evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank: int = 50) -> RankResult:
    """mAP, CMC (up to `max_rank`) and mINP for a (num_query, num_gallery) distance matrix (smaller = closer)."""
    if max_rank < 1:
        raise InputError(f"max_rank must be at least 1, got {max_rank}")
    ranks = match_ranks(distmat, q_pids, g_pids, q_camids, g_camids)
    return summarise(ranks, max_rank)


def summarise(ranks: list[np.ndarray | None], max_rank: int = 50) -> RankResult:
    evaluated = np.array([r is not None for r in ranks], bool)
    kept = [r for r in ranks if r is not None]
    if kept:
        ap = np.array([np.mean(np.arange(1, len(r) + 1) / (r + 1)) for r in kept])
        inp = np.array([len(r) / (r[-1] + 1) for r in kept])
        first = np.array([r[0] for r in kept], np.int64)
        num = np.array([len(r) for r in kept], np.int64)
        cmc = np.array([np.mean(first < k) for k in range(1, max_rank + 1)])
        m_ap, m_inp = float(ap.mean()), float(inp.mean())
    else:
        ap = inp = np.zeros(0)
        first = num = np.zeros(0, np.int64)
        cmc = np.full(max_rank, np.nan)
        m_ap = m_inp = float("nan")
    return RankResult(mAP=m_ap, mINP=m_inp, cmc=cmc, num_query=len(ranks), num_evaluated=int(evaluated.sum()),
                      num_skipped=int((~evaluated).sum()), evaluated=evaluated, ap=ap, inp=inp, first_rank=first,
                      num_matches=num)


def cosine_distance(qf: np.ndarray, gf: np.ndarray) -> np.ndarray:
    """1 - cosine similarity, rows normalised here so un-normalised features from a file are scored correctly."""
    return 1.0 - l2_normalise(qf) @ l2_normalise(gf).T


def euclidean_distance(qf: np.ndarray, gf: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance (what torchreid's 'euclidean' metric returns), clipped at 0 against rounding."""
    qf = np.asarray(qf, np.float32)
    gf = np.asarray(gf, np.float32)
    d = (qf * qf).sum(1)[:, None] + (gf * gf).sum(1)[None, :] - 2 * qf @ gf.T
    return np.maximum(d, 0)


METRICS = {"cosine": cosine_distance, "euclidean": euclidean_distance}


def distance(qf: np.ndarray, gf: np.ndarray, metric: str = "cosine") -> np.ndarray:
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    qf, gf = np.asarray(qf), np.asarray(gf)
    if qf.ndim != 2 or gf.ndim != 2 or qf.shape[1] != gf.shape[1]:
        raise InputError(f"query and gallery features must be 2-D with the same width, got {qf.shape} and "
                         f"{gf.shape}")
    return METRICS[metric](qf, gf).astype(np.float32)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows as float32 unit vectors. Features read from a file may hold an all-zero row, which has no direction:
    refused here rather than silently scored as cosine 0 (eps=0 then divides by the exact norms)."""
    x = np.asarray(x, np.float32)
    if np.any(np.linalg.norm(x, axis=1) == 0):
        raise InputError("a feature vector is all zeros; it has no direction to compare by cosine")
    return l2_normalize(x, axis=1, eps=0.0)
