"""k-reciprocal re-ranking: the bounded-memory shortlist at 3,000 x 3,000 (no data or models, but ~15 s of CPU,
so it sits in this tier; the rest of the re-ranking tests: tests/unit/test_eval_rerank.py)."""
import tracemalloc

from reid_core.evaluation.rerank import re_ranking_shortlist
from tests.unit.test_eval_rerank import clustered


def test_shortlist_memory_does_not_grow_with_the_square():
    """3,000 x 3,000 items: the dense reference needs several (6000 x 6000) float32 matrices (~144 MB each); the
    shortlist stays far below one of them."""
    qf, gf, *_ = clustered(8, nq=3000, ng=3000, dim=64, ids=600)
    tracemalloc.start()
    re_ranking_shortlist(qf, gf, shortlist=100, block=512)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    one_dense = 6000 * 6000 * 4
    print(f"shortlist peak {peak / 1e6:.0f} MB; one dense N x N float32 matrix {one_dense / 1e6:.0f} MB")
    assert peak < one_dense / 2
