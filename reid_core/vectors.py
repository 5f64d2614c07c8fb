"""Feature-vector arithmetic shared by the embedders, enrolment, training and evaluation."""
from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike


def l2_normalize(x: np.ndarray, axis: int = -1, eps: float = 1e-12, dtype: DTypeLike | None = None) -> np.ndarray:
    """`x` scaled to unit L2 norm along `axis` (a 1-d vector, or each row of a matrix); norms below `eps` are
    raised to it, so an all-zero input stays zero instead of becoming NaN. `dtype` casts the result."""
    x = np.asarray(x)
    if x.ndim <= 1:
        # np.linalg.norm of a whole vector takes its dot-product path, which rounds differently from the per-axis
        # sum: kept so single vectors (identity means, track means) come out bit for bit as they always have.
        out = x / np.maximum(np.linalg.norm(x), eps)
    else:
        out = x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), eps)
    return out if dtype is None else out.astype(dtype)
