"""Verification view: TAR@FAR, EER and AUC on hand-checkable pairs, and AUC against scikit-learn."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from reid_core.errors import InputError
from reid_core.evaluation.verification import pair_scores, verify


def one_query(sims, g_pids, g_cams=None):
    g_cams = np.ones(len(g_pids)) if g_cams is None else np.asarray(g_cams)
    return np.array([sims], float), np.array([1]), np.array(g_pids), np.array([0]), g_cams


def test_tar_at_far_on_ten_impostors():
    # genuine 0.95, 0.85, 0.55; impostors 0.9, 0.8, ..., 0.0 (10 pairs)
    imp = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    s, qp, gp, qc, gc = one_query([0.95, 0.85, 0.55] + imp, [1, 1, 1] + [2] * 10)
    v = verify(s, qp, gp, qc, gc, far_targets=(0.1, 0.3, 0.01))
    assert v.num_genuine == 3 and v.num_impostor == 10
    p10, p30, p01 = v.points
    # FAR 0.1 allows 1 impostor: accept > 0.8 (only 0.9 gets through) -> genuine 0.95, 0.85 accepted
    assert p10.threshold == pytest.approx(0.8) and p10.far == pytest.approx(0.1) and p10.tar == pytest.approx(2 / 3)
    # FAR 0.3 allows 3: accept > 0.6 -> still 2 of 3 genuine
    assert p30.threshold == pytest.approx(0.6) and p30.tar == pytest.approx(2 / 3)
    # FAR 0.01 needs 100 impostor pairs to be measured: not reported as a number
    assert p01.tar is None and p01.threshold is None
    assert v.tar_at(0.1) == pytest.approx(2 / 3)
    with pytest.raises(KeyError):
        v.tar_at(0.5)


def test_perfect_separation():
    s, qp, gp, qc, gc = one_query([0.9, 0.8, 0.2, 0.1], [1, 1, 2, 3])
    v = verify(s, qp, gp, qc, gc, far_targets=(0.5,))
    assert v.eer == pytest.approx(0.0)
    assert v.auc == pytest.approx(1.0)
    assert v.points[0].tar == pytest.approx(1.0)


def test_pairs_follow_the_ranking_protocol():
    # same pid + same cam (excluded), junk (excluded), genuine other cam, impostor same cam (kept)
    s, qp, gp, qc, gc = one_query([0.9, 0.8, 0.7, 0.6], [1, -1, 1, 2], g_cams=[0, 1, 1, 0])
    genuine, impostor = pair_scores(s, qp, gp, qc, gc)
    assert genuine.tolist() == pytest.approx([0.7])
    assert impostor.tolist() == pytest.approx([0.6])


@pytest.mark.parametrize("seed", [0, 1])
def test_auc_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    nq, ng = 20, 60
    qp, gp = rng.integers(0, 8, nq), rng.integers(0, 8, ng)
    qc, gc = np.zeros(nq), np.ones(ng)
    s = (rng.normal(size=(nq, ng)) + 1.5 * (qp[:, None] == gp[None, :])).astype(np.float32)  # scored in float32
    v = verify(s, qp, gp, qc, gc)
    same = qp[:, None] == gp[None, :]
    assert v.auc == pytest.approx(roc_auc_score(same.ravel(), s.ravel()), abs=1e-9)
    # EER: FRR and FAR are within one genuine pair of each other at the reported threshold
    genuine, impostor = s[same], s[~same]
    frr = np.mean(genuine <= v.eer_threshold)
    far = np.mean(impostor > v.eer_threshold)
    assert abs(frr - far) <= 1 / len(genuine) + 1 / len(impostor) + 1e-9
    assert v.eer == pytest.approx((frr + far) / 2)
    # the ROC is monotone and spans FAR 0..1
    assert np.all(np.diff(v.roc.far) >= 0) and np.all(np.diff(v.roc.tar) >= -1e-12)
    assert v.roc.far[0] == 0 and v.roc.far[-1] == 1 and v.roc.tar[-1] == 1


def test_needs_both_kinds_of_pairs():
    s, qp, gp, qc, gc = one_query([0.9, 0.8], [2, 3])
    with pytest.raises(InputError, match="genuine"):
        verify(s, qp, gp, qc, gc)
    with pytest.raises(InputError, match="shape"):
        verify(np.zeros((2, 2)), qp, gp, qc, gc)
