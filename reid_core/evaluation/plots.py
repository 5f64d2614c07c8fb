"""CMC and ROC figures as PNG files (matplotlib's Agg backend: no display needed, safe in worker threads)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reid_core.evaluation.verification import RocCurve


@dataclass(frozen=True)
class Curve:
    label: str
    x: np.ndarray
    y: np.ndarray


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # a bare Figure: no pyplot global state shared between calls

    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    return fig, fig.add_subplot(1, 1, 1)


def cmc_curve(label: str, cmc: np.ndarray) -> Curve:
    return Curve(label, np.arange(1, len(cmc) + 1), np.asarray(cmc, float))


def roc_curve(label: str, roc: RocCurve) -> Curve:
    keep = roc.far > 0  # a log axis cannot show FAR 0
    return Curve(label, roc.far[keep], roc.tar[keep])


def plot_cmc(curves: list[Curve], path: str | Path, title: str = "CMC") -> Path:
    fig, ax = _figure()
    for c in curves:
        ax.plot(c.x, c.y * 100, label=c.label, linewidth=1.5)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_xlim(1, max(len(c.x) for c in curves))
    ax.set_ylim(0, 100.5)
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_roc(curves: list[Curve], path: str | Path, title: str = "ROC") -> Path:
    fig, ax = _figure()
    lowest = 1.0
    for c in curves:
        ax.plot(c.x, c.y * 100, label=c.label, linewidth=1.5)
        if len(c.x):
            lowest = min(lowest, float(c.x.min()))
    ax.set_xscale("log")
    ax.set_xlim(max(lowest, 1e-6), 1)
    ax.set_ylim(0, 100.5)
    ax.set_xlabel("false accept rate (log scale)")
    ax.set_ylabel("true accept rate (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
