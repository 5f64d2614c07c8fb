"""Where and when a person can appear next: a spatial-temporal (st) model of camera-to-camera transitions.

st-ReID (Wang et al., AAAI 2018, "Spatial-Temporal Person Re-identification"): per ordered camera pair a histogram of
the time gap between a person's sighting in the first camera and the next one in the second, smoothed with a
Gaussian (Histogram-Parzen), gives p_st(a, b, dt). Appearance and timing are joined as
    joint = f(s; l0, g0) * f(p_st; l1, g1),   f(x; l, g) = 1 / (1 + l * exp(-g * x))  (logistic smoothing)
so a strong face-on match survives an odd timing and timing alone never makes a match.

One decision scale: the pipeline's thresholds are cosines (reid_core/calibration.py). The joint score is mapped
back to that scale, s_st = f0^-1(f0(s) * f1(p_st) / f1(p_ref)), where p_ref is the model's typical p_st of a true
transition (the median over the transitions it learned from). So a pair with a typical timing keeps its cosine, an
unlikely timing lowers it, a likely one raises it, and where the model has nothing to say (time unknown, same camera,
no model) s_st is s exactly: a threshold means the same with st on or off. Ranking by s_st is ranking by the joint
score (f0^-1 is increasing). An ordered camera pair no learned transition used gets p_st = 0 (nobody was seen going
that way); a pair is direction-free in use: p_st(a, b, -dt) = p_st(b, a, dt).

The model is learned from labelled transitions (`learn`), or without labels from confident cross-camera matches
(`learn_unlabelled`: match, learn, re-score, a few rounds). Its constants and how they were calibrated:
docs/spatial_temporal.md. Stored as JSON (`save`/`load`; a store keeps its model in `model_path(store_dir)`).
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from reid_core.errors import InputError, StoreError

MODEL_FILE = "spacetime.json"
_EPS = 1e-6


@dataclass(frozen=True)
class StParams:
    """The model's constants. Times are in one unit throughout (seconds for videos; GRID's benchmark uses frames of
    its shared clock). Defaults: l0, g0, l1, g1 as chosen on the training half of GRID with the default embedder
    (bench/st_grid.py, docs/spatial_temporal.md: bin 1 frame, sigma 4 bins); GRID gives no frame rate, so the
    time constants keep its sigma of 4 bins with a bin of 0.5 s (p_st's scale depends on the bins per sigma)."""

    bin_s: float = 0.5  # histogram bin width
    sigma_s: float = 2.0  # Parzen (Gaussian) smoothing of the histogram
    max_gap_s: float = 600.0  # gaps beyond this are outside the model: p_st = 0
    l0: float = 5.0  # f(s; l0, g0): appearance (cosine of the default embedder, person-reidentification-retail-0287)
    g0: float = 2.0
    l1: float = 0.5  # f(p_st; l1, g1): timing; f1(0) / f1(1) = 1 / (1 + l1) bounds the penalty of an odd timing
    g1: float = 500.0

    def check(self) -> StParams:
        if self.bin_s <= 0 or self.sigma_s < 0 or self.max_gap_s <= self.bin_s:
            raise InputError(f"st model: need bin > 0, sigma >= 0 and max gap > bin (got bin {self.bin_s}, "
                             f"sigma {self.sigma_s}, max gap {self.max_gap_s})")
        if min(self.l0, self.l1) <= 0:
            raise InputError(f"st model: the logistic's l must be > 0 (got l0 {self.l0}, l1 {self.l1})")
        return self


@dataclass(frozen=True)
class Transition:
    """One person seen in camera `src`, then `dt` later in camera `dst`."""

    src: str
    dst: str
    dt: float


@dataclass(frozen=True)
class Span:
    """One sighting on the wall clock: camera, first and last time (None: the video's start time is unknown)."""

    camera: str
    t0: float | None
    t1: float | None


@dataclass(frozen=True)
class StFactor:
    """What the model says about one pair of sightings: p_st, the factor it applies to f0(s), and why."""

    p: float | None  # None: uninformative (time unknown, same camera, no model); the score is left as it is
    factor: float  # f1(p) / f1(p_ref); 1.0 when uninformative
    text: str  # e.g. "cam1 -> cam2 in 3.2 s: likely (p=0.041)"


def logistic(x, lam: float, gamma: float):
    """f(x; l, g) = 1 / (1 + l * exp(-g x)), the st-ReID smoothing (l = lam, g = gamma); floats and arrays."""
    return 1.0 / (1.0 + lam * np.exp(-gamma * np.asarray(x, np.float64)))


def inverse_logistic(y, lam: float, gamma: float):
    y = np.clip(np.asarray(y, np.float64), _EPS, 1 - _EPS)
    return -np.log((1.0 / y - 1.0) / lam) / gamma


def joint(s, p, params: StParams):
    """The st-ReID joint score f(s; l0, g0) * f(p_st; l1, g1) (for ranking; decisions use `adjust`)."""
    return logistic(s, params.l0, params.g0) * logistic(p, params.l1, params.g1)


def parzen_histogram(gaps: Sequence[float], params: StParams) -> np.ndarray:
    """Counts of gaps in bins of bin_s over [0, max_gap_s), smoothed by a Gaussian of sigma_s, as probabilities
    per bin (summing to 1; all zero without gaps)."""
    n = int(math.ceil(params.max_gap_s / params.bin_s))
    hist = np.zeros(n, np.float64)
    for dt in gaps:
        i = int(dt // params.bin_s)
        if 0 <= i < n:
            hist[i] += 1
    if params.sigma_s > 0 and hist.any():
        s = params.sigma_s / params.bin_s
        r = max(1, int(math.ceil(4 * s)))
        kernel = np.exp(-0.5 * (np.arange(-r, r + 1) / s) ** 2)
        hist = np.convolve(hist, kernel / kernel.sum(), mode="same")
    total = hist.sum()
    return hist / total if total > 0 else hist


def pair_gap(a: Span, b: Span) -> tuple[str, str, float] | None:
    """(earlier camera, later camera, gap >= 0) between two sightings; None when either time is unknown. Overlapping
    sightings have gap 0 (at once in two cameras)."""
    if a.t0 is None or b.t0 is None:
        return None
    a1 = a.t1 if a.t1 is not None else a.t0
    b1 = b.t1 if b.t1 is not None else b.t0
    if b.t0 >= a1:
        return a.camera, b.camera, b.t0 - a1
    if a.t0 >= b1:
        return b.camera, a.camera, a.t0 - b1
    return (a.camera, b.camera, 0.0) if a.t0 <= b.t0 else (b.camera, a.camera, 0.0)


@dataclass
class TransitionModel:
    params: StParams = field(default_factory=StParams)
    hists: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    p_ref: float = 0.0  # median p_st of the transitions learned from: the timing that leaves a score as it is
    source: str = "none"  # "labelled", "unlabelled" (confident matches) or "none"

    @property
    def empty(self) -> bool:
        return not self.hists

    def p_st(self, src: str, dst: str, dt: float) -> float:
        """P(gap in dt's bin | the same person goes src -> dst); negative dt means dst -> src."""
        if dt < 0:
            src, dst, dt = dst, src, -dt
        hist = self.hists.get((src, dst))
        if hist is None:
            return 0.0
        i = int(dt // self.params.bin_s)
        return float(hist[i]) if 0 <= i < len(hist) else 0.0

    def factor(self, a: Span, b: Span) -> StFactor:
        """The model's word on two sightings being one person; uninformative without a model, without times or
        within one camera."""
        if self.empty:
            return StFactor(None, 1.0, "no st model")
        if a.camera == b.camera:
            return StFactor(None, 1.0, f"same camera {a.camera}: timing not used")
        gap = pair_gap(a, b)
        if gap is None:
            return StFactor(None, 1.0, "time unknown: timing not used")
        src, dst, dt = gap
        p = self.p_st(src, dst, dt)
        prm = self.params
        f = float(logistic(p, prm.l1, prm.g1) / logistic(self.p_ref, prm.l1, prm.g1))
        if (src, dst) not in self.hists:
            word = f"unlikely (never seen {src} -> {dst})"
        else:
            word = "likely" if p >= self.p_ref else "possible" if p >= self.p_ref / 4 else "unlikely"
            word = f"{word} (p={p:.3g})"
        return StFactor(p, f, f"{src} -> {dst} in {dt:.1f} s: {word}")

    def adjust(self, score: float, fac: StFactor) -> float:
        """A cosine moved by the timing, on the cosine scale (see the module doc); unchanged when uninformative."""
        if fac.p is None:
            return score
        prm = self.params
        y = logistic(score, prm.l0, prm.g0) * fac.factor
        return float(inverse_logistic(y, prm.l0, prm.g0))

    def adjust_matrix(self, s: np.ndarray, p: np.ndarray) -> np.ndarray:
        """`adjust` for arrays of scores and p_st (NaN p: uninformative, the score is kept)."""
        prm = self.params
        known = ~np.isnan(p)
        out = s.astype(np.float64).copy()
        f = logistic(np.where(known, p, 0.0), prm.l1, prm.g1) / logistic(self.p_ref, prm.l1, prm.g1)
        y = logistic(s, prm.l0, prm.g0) * f
        out[known] = inverse_logistic(y, prm.l0, prm.g0)[known]
        return out

    # ---- persistence --------------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"params": asdict(self.params), "p_ref": self.p_ref, "source": self.source,
                "pairs": [{"src": a, "dst": b, "count": self.counts.get((a, b), 0),
                           "hist": [round(float(v), 8) for v in h]} for (a, b), h in sorted(self.hists.items())]}

    @classmethod
    def from_json(cls, d: dict) -> TransitionModel:
        params = StParams(**d.get("params", {})).check()
        hists, counts = {}, {}
        for pair in d.get("pairs", []):
            key = (str(pair["src"]), str(pair["dst"]))
            hists[key] = np.asarray(pair["hist"], np.float64)
            counts[key] = int(pair.get("count", 0))
        return cls(params, hists, counts, float(d.get("p_ref", 0.0)), str(d.get("source", "none")))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json()))
        tmp.replace(path)  # a reader never sees half a model
        return path


def model_path(store_dir: str | Path) -> Path:
    return Path(store_dir) / MODEL_FILE


def load_model(path: str | Path) -> TransitionModel | None:
    """The model saved at path, None if there is none; a damaged file is one clear error."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return TransitionModel.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StoreError(f"{path}: not a readable st model ({e})",
                         cli_hint="learn it again with `reid st learn`") from None


def learn(transitions: Iterable[Transition], params: StParams | None = None,
          source: str = "labelled") -> TransitionModel:
    """A model from known transitions (same person, camera src then dst, gap dt); same-camera ones are ignored."""
    params = (params or StParams()).check()
    gaps: dict[tuple[str, str], list[float]] = {}
    for t in transitions:
        if t.src == t.dst:
            continue
        src, dst, dt = (t.src, t.dst, t.dt) if t.dt >= 0 else (t.dst, t.src, -t.dt)
        gaps.setdefault((src, dst), []).append(dt)
    model = TransitionModel(params, {k: parzen_histogram(v, params) for k, v in gaps.items()},
                            {k: len(v) for k, v in gaps.items()}, 0.0, source if gaps else "none")
    ps = [model.p_st(a, b, dt) for (a, b), v in gaps.items() for dt in v]
    model.p_ref = float(np.median(ps)) if ps else 0.0
    return model


def st_matrix(model: TransitionModel, a: Sequence[Span], b: Sequence[Span]) -> np.ndarray:
    """p_st for every pair (NaN where uninformative), e.g. queries x gallery."""
    out = np.full((len(a), len(b)), np.nan)
    if model.empty:
        return out
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            fac = model.factor(x, y)
            if fac.p is not None:
                out[i, j] = fac.p
    return out


@dataclass(frozen=True)
class UnlabelledFit:
    model: TransitionModel
    pairs: int  # confident pairs the final model was learned from
    rounds: int


def learn_unlabelled(features: np.ndarray, spans: Sequence[Span], params: StParams | None = None,
                     min_score: float = 0.6, rounds: int = 3) -> UnlabelledFit:
    """A model without labels: each sighting's best cross-camera match, kept when the two are each other's best and
    score at least `min_score` on the (st-adjusted) cosine scale, gives a transition; learn, re-score with the model,
    repeat. features: L2-normalised, one row per sighting."""
    params = (params or StParams()).check()
    n = len(spans)
    cams = np.array([s.camera for s in spans])
    sims = features @ features.T if n else np.zeros((0, 0))
    cross = cams[:, None] != cams[None, :]
    model = TransitionModel(params)
    pairs: list[tuple[int, int]] = []
    done = 0
    for rnd in range(1, rounds + 1):
        done = rnd
        scored = model.adjust_matrix(sims, st_matrix(model, spans, spans)) if not model.empty else sims.copy()
        scored = np.where(cross, scored, -np.inf)
        best = scored.argmax(axis=1) if n else np.zeros(0, int)
        found = sorted({(min(i, j), max(i, j)) for i, j in enumerate(best.tolist())
                        if best[j] == i and scored[i, j] >= min_score})
        if found == pairs and not model.empty:
            break
        pairs = found
        ts = []
        for i, j in pairs:
            gap = pair_gap(spans[i], spans[j])
            if gap is not None:
                ts.append(Transition(*gap))
        model = learn(ts, params, "unlabelled")
    return UnlabelledFit(model, len(pairs), done)
