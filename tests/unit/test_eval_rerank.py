"""k-reciprocal re-ranking: the same numbers as torchreid's re_ranking, and the shortlist (its memory bound at
3,000 x 3,000: tests/integration/test_eval_rerank_memory.py)."""
import warnings

import numpy as np
import pytest

from reid_core.errors import InputError
from reid_core.evaluation.metrics import cosine_distance, euclidean_distance, evaluate_rank
from reid_core.evaluation.rerank import re_ranking, re_ranking_shortlist


def torchreid_re_ranking(qg, qq, gg, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torchreid.reid.utils.rerank import re_ranking as reference
    return reference(qg, qq, gg, **kw)


def clustered(seed, nq=60, ng=400, dim=32, ids=30, noise=0.8):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(ids, dim))
    qp, gp = rng.integers(0, ids, nq), rng.integers(0, ids, ng)
    qf = (centres[qp] + noise * rng.normal(size=(nq, dim))).astype(np.float32)
    gf = (centres[gp] + noise * rng.normal(size=(ng, dim))).astype(np.float32)
    return qf, gf, qp, gp, rng.integers(0, 4, nq), rng.integers(0, 4, ng)


@pytest.mark.parametrize("seed", [0, 1])
def test_same_as_torchreid_on_clustered_features(seed):
    qf, gf, qp, gp, qc, gc = clustered(seed)
    qg, qq, gg = cosine_distance(qf, gf), cosine_distance(qf, qf), cosine_distance(gf, gf)
    ref = torchreid_re_ranking(qg, qq, gg, k1=20, k2=6, lambda_value=0.3)
    ours = re_ranking(qg, qq, gg, 20, 6, 0.3)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=2e-6)  # float32 summation order only
    a = evaluate_rank(ours, qp, gp, qc, gc)
    b = evaluate_rank(ref, qp, gp, qc, gc)
    assert a.mAP == pytest.approx(b.mAP, abs=1e-12) and np.array_equal(a.cmc, b.cmc)
    plain = evaluate_rank(qg, qp, gp, qc, gc)
    assert a.mAP != pytest.approx(plain.mAP)  # it did re-rank


def test_same_as_torchreid_on_uniform_random_distances_and_other_parameters():
    rng = np.random.default_rng(7)
    qg = rng.random((25, 90)).astype(np.float32)
    qq = rng.random((25, 25)).astype(np.float32)
    qq = (qq + qq.T) / 2
    np.fill_diagonal(qq, 0)
    gg = rng.random((90, 90)).astype(np.float32)
    gg = (gg + gg.T) / 2
    np.fill_diagonal(gg, 0)
    for k1, k2, lam in ((20, 6, 0.3), (7, 3, 0.5), (5, 1, 0.0)):
        ref = torchreid_re_ranking(qg, qq, gg, k1=k1, k2=k2, lambda_value=lam)
        np.testing.assert_allclose(re_ranking(qg, qq, gg, k1, k2, lam), ref, atol=2e-6)


def test_same_as_torchreid_with_euclidean_distances():
    qf, gf, *_ = clustered(3, nq=30, ng=150)
    qg, qq, gg = euclidean_distance(qf, gf), euclidean_distance(qf, qf), euclidean_distance(gf, gf)
    np.testing.assert_allclose(re_ranking(qg, qq, gg), torchreid_re_ranking(qg, qq, gg), atol=2e-6)


def test_shortlist_values_are_the_exact_ones():
    qf, gf, qp, gp, qc, gc = clustered(2)
    exact = re_ranking(cosine_distance(qf, gf), cosine_distance(qf, qf), cosine_distance(gf, gf))
    sl = re_ranking_shortlist(qf, gf, shortlist=50, block=64)  # small blocks: the block loop is exercised
    assert sl.indices.shape == (60, 50)
    np.testing.assert_allclose(sl.distances, np.take_along_axis(exact, sl.indices, axis=1), atol=2e-6)
    # the shortlist is each query's 50 nearest by the original distance
    orig = cosine_distance(qf, gf)
    nearest = np.sort(np.argsort(orig, axis=1, kind="stable")[:, :50], axis=1)
    assert np.array_equal(np.sort(sl.indices, axis=1), nearest)


def test_shortlist_covering_the_gallery_ranks_like_the_exact_version():
    qf, gf, qp, gp, qc, gc = clustered(4, ng=200)
    exact = re_ranking(cosine_distance(qf, gf), cosine_distance(qf, qf), cosine_distance(gf, gf))
    full = re_ranking_shortlist(qf, gf, shortlist=200).dense(200)
    a, b = evaluate_rank(full, qp, gp, qc, gc), evaluate_rank(exact, qp, gp, qc, gc)
    assert a.mAP == pytest.approx(b.mAP, abs=1e-9)
    # a short list keeps every other item behind the re-ranked ones, in original order
    sl = re_ranking_shortlist(qf, gf, shortlist=10)
    dense = sl.dense(200, rest=cosine_distance(qf, gf))
    top10 = np.argsort(dense, axis=1, kind="stable")[:, :10]
    assert np.array_equal(np.sort(top10, axis=1), np.sort(sl.indices, axis=1))
    assert (dense.max(axis=1) >= 2).all()


def test_shortlist_with_euclidean_metric_matches_exact():
    qf, gf, *_ = clustered(6, nq=20, ng=120)
    exact = re_ranking(euclidean_distance(qf, gf), euclidean_distance(qf, qf), euclidean_distance(gf, gf))
    sl = re_ranking_shortlist(qf, gf, shortlist=30, metric="euclidean")
    np.testing.assert_allclose(sl.distances, np.take_along_axis(exact, sl.indices, axis=1), atol=5e-6)


def test_parameter_and_shape_checks():
    qf, gf, *_ = clustered(9, nq=5, ng=30)
    qg, qq, gg = cosine_distance(qf, gf), cosine_distance(qf, qf), cosine_distance(gf, gf)
    with pytest.raises(InputError, match="k2"):
        re_ranking(qg, qq, gg, k1=3, k2=6)
    with pytest.raises(InputError, match="lambda"):
        re_ranking(qg, qq, gg, lambda_value=1.5)
    with pytest.raises(InputError, match="q_q"):
        re_ranking(qg, gg, gg)
    with pytest.raises(InputError, match="shortlist"):
        re_ranking_shortlist(qf, gf, shortlist=0)
    with pytest.raises(InputError, match="metric"):
        re_ranking_shortlist(qf, gf, metric="l1")
