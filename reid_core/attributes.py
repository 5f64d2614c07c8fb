"""Pedestrian attributes for text search: Intel's crossroad-0230 model plus colour naming from the crop's pixels.

Per crop we keep the model's 8 attribute probabilities and, for the upper and lower body, a distribution over a
fixed 11-colour palette with the lightness of each colour's pixels. Per track these are averaged over a sample of
its crops, so one badly cropped or occluded frame cannot flip a track's description.

The model (OpenVINO IR, input '0' [N,3,160,80] BGR 0-255) returns sigmoid probabilities and two points, in
normalised crop coordinates, where the top and bottom clothing colour can be sampled. We checked by experiment on
PETS09 crops that the network wants BGR (gender AUC 0.83 with BGR vs 0.72 with RGB) and that the first point sits
on the chest (y~0.32) and the second on the thighs (y~0.66).
"""
from __future__ import annotations

import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from reid_core.errors import InputError, WeightsError
from reid_core.precision import ov_config
from reid_core.weights import resolve

MODEL_NAME = "person-attributes-recognition-crossroad-0230"
MODEL_H, MODEL_W = 160, 80
ATTRIBUTES = ("male", "bag", "backpack", "hat", "long_sleeves", "long_pants", "long_hair", "coat_jacket")
COLOURS = ("black", "white", "grey", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown")
CHROMATIC = frozenset(COLOURS[3:])
_CI = {c: i for i, c in enumerate(COLOURS)}

# Bump when the colour naming or the stored layout changes: cached annotations of another version are recomputed.
ANNOTATION_KIND = "attributes:v1"

# Sampling windows (half width, half height, as fractions of the crop) around the model's colour points.
UPPER_HALF = (0.20, 0.10)
LOWER_HALF = (0.20, 0.12)
# The model's bottom point sits at the top of the thighs, where long coats still hang; a little lower sees the
# trousers (on PETS09 this moved a long-coated woman's jeans from 16% to 24% blue and changed nobody else's name).
LOWER_SHIFT = 0.04
# Plausible ranges for the points: the network is not trained on every crop shape, so a wild point is clamped.
UPPER_Y_RANGE, LOWER_Y_RANGE, X_RANGE = (0.2, 0.45), (0.5, 0.8), (0.3, 0.7)
BORDER_FRACTION = 0.12  # outer columns of a crop taken as a background sample
BACKGROUND_WEIGHT = 0.5  # how much of the background's colour mix is removed from a clothing window


@dataclass(frozen=True)
class RegionColour:
    """Colour of one body region: share of each palette colour (sums to 1) and each colour's lightness (0-1)."""

    share: np.ndarray  # (11,)
    lightness: np.ndarray  # (11,); 0.5 where a colour has no pixels

    def top(self, n: int = 2, min_share: float = 0.0) -> list[tuple[str, float]]:
        order = np.argsort(-self.share)[:n]
        return [(COLOURS[i], float(self.share[i])) for i in order if self.share[i] >= min_share]


@dataclass(frozen=True)
class CropAttributes:
    probs: np.ndarray  # (8,) in ATTRIBUTES order
    upper: RegionColour
    lower: RegionColour
    top_point: tuple[float, float]
    bottom_point: tuple[float, float]

    def prob(self, name: str) -> float:
        return float(self.probs[ATTRIBUTES.index(name)])

    def vector(self) -> np.ndarray:
        """Everything that describes the crop, as one vector (for picking a track's most typical crop)."""
        return np.concatenate([self.probs, self.upper.share, self.lower.share])

    # A fixed float32 layout keeps the per-crop cache small (about 200 bytes) and fast to decode.
    _N = 8 + 11 * 4 + 4

    def to_bytes(self) -> bytes:
        arr = np.concatenate([self.probs, self.upper.share, self.upper.lightness, self.lower.share,
                              self.lower.lightness, self.top_point, self.bottom_point]).astype(np.float32)
        return struct.pack("<H", 1) + arr.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> CropAttributes:
        if len(data) != 2 + 4 * cls._N or struct.unpack("<H", data[:2])[0] != 1:
            raise ValueError("not a version-1 attribute record")
        a = np.frombuffer(data[2:], np.float32).astype(np.float64)
        return cls(a[:8], RegionColour(a[8:19], a[19:30]), RegionColour(a[30:41], a[41:52]),
                   (float(a[52]), float(a[53])), (float(a[54]), float(a[55])))


@dataclass(frozen=True)
class TrackAttributes:
    """A track's description: attribute probabilities and region colours averaged over its sampled crops."""

    probs: np.ndarray
    upper: RegionColour
    lower: RegionColour
    crops: int  # how many crops were averaged
    representative: int  # index (into the crops given to `aggregate`) of the crop closest to the average

    def prob(self, name: str) -> float:
        return float(self.probs[ATTRIBUTES.index(name)])


# ---- colour naming ------------------------------------------------------------------------------------------------
def _smooth(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def colour_memberships(pixels_bgr: np.ndarray, gain: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) uint8 BGR pixels -> ((N, 11) soft palette memberships summing to 1, (N,) lightness 0-1).

    Shadow robustness comes from deciding "is it coloured" on saturation (a ratio that a shadow leaves alone)
    rather than on absolute chroma, and from naming the hue before looking at brightness. Dark pixels need more
    saturation to count as coloured because JPEG noise makes near-black pixels look saturated. `gain` brightens
    an under-exposed crop before black/grey/white are told apart.
    """
    px = np.asarray(pixels_bgr, np.uint8).reshape(-1, 1, 3)
    hsv = cv2.cvtColor(px, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.float32)
    hue, sat = hsv[:, 0] * 2.0, hsv[:, 1]
    val = np.minimum(hsv[:, 2] * gain, 255.0)
    n = len(hue)
    need = 45.0 + 60.0 * _smooth(90.0 - val, 0.0, 60.0)
    chroma = _smooth(sat - need, 0.0, 40.0) * _smooth(val, 25.0, 40.0)

    out = np.zeros((n, len(COLOURS)), np.float32)
    black = _smooth(80.0 - val, 0.0, 40.0)
    white = _smooth(val, 160.0, 200.0)
    grey = 1.0 - black - white
    achrom = 1.0 - chroma
    out[:, _CI["black"]] = achrom * black
    out[:, _CI["white"]] = achrom * white
    out[:, _CI["grey"]] = achrom * grey

    # Hue sectors in degrees. Brown is dark orange/yellow; pink is light, less saturated red or magenta.
    red = (hue >= 345) | (hue < 15)
    orange = (hue >= 15) & (hue < 40)
    yellow = (hue >= 40) & (hue < 70)
    green = (hue >= 70) & (hue < 165)
    blue = (hue >= 165) & (hue < 260)
    purple = (hue >= 260) & (hue < 290)
    magenta = (hue >= 290) & (hue < 345)
    name = np.full(n, _CI["grey"])
    name[red] = _CI["red"]
    name[red & (sat < 110) & (val > 170)] = _CI["pink"]
    name[orange] = np.where(val[orange] < 150, _CI["brown"], _CI["orange"])
    name[yellow] = np.where(val[yellow] < 100, _CI["brown"], _CI["yellow"])
    name[green] = _CI["green"]
    name[blue] = _CI["blue"]
    name[purple] = _CI["purple"]
    name[magenta] = np.where(val[magenta] < 90, _CI["purple"], _CI["pink"])
    out[np.arange(n), name] += chroma
    return out, val / 255.0


def exposure_gain(crop_bgr: np.ndarray) -> float:
    """Brightening factor for a crop in shade: its 95th-percentile brightness is lifted towards 220 (at most x1.6)."""
    v = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2HSV)[..., 2]
    return float(np.clip(220.0 / max(float(np.percentile(v, 95)), 1.0), 1.0, 1.6))


def _window(shape: tuple[int, ...], cx: float, cy: float, hw: float, hh: float) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    x1, x2 = int(max(0, round((cx - hw) * w))), int(min(w, round((cx + hw) * w)))
    y1, y2 = int(max(0, round((cy - hh) * h))), int(min(h, round((cy + hh) * h)))
    return x1, max(x1 + 1, x2), y1, max(y1 + 1, y2)


def region_colour(crop_bgr: np.ndarray, cx: float, cy: float, hw: float, hh: float,
                  background_weight: float = BACKGROUND_WEIGHT) -> RegionColour:
    """Palette shares of the window centred on (cx, cy) (fractions of the crop), minus part of the background mix.

    Boxes are loose: between the legs and beside the torso the window sees road or grass. The crop's outer columns
    at the same height are mostly background, so their colour mix, scaled by `background_weight`, is subtracted.
    """
    if crop_bgr.ndim != 3 or crop_bgr.shape[2] != 3 or crop_bgr.size == 0:
        raise InputError(f"expected a BGR image, got an array of shape {crop_bgr.shape}")
    gain = exposure_gain(crop_bgr)
    x1, x2, y1, y2 = _window(crop_bgr.shape, cx, cy, hw, hh)
    memb, light = colour_memberships(crop_bgr[y1:y2, x1:x2].reshape(-1, 3), gain)
    share = memb.mean(0)
    mass = memb.sum(0)
    lightness = np.where(mass > 1e-6, (memb * light[:, None]).sum(0) / np.maximum(mass, 1e-6), 0.5)
    if background_weight > 0:
        w = crop_bgr.shape[1]
        b = max(1, int(round(BORDER_FRACTION * w)))
        if 2 * b < w:
            border = np.concatenate([crop_bgr[y1:y2, :b].reshape(-1, 3), crop_bgr[y1:y2, w - b:].reshape(-1, 3)])
            share = np.maximum(share - background_weight * colour_memberships(border, gain)[0].mean(0), 0.0)
    total = share.sum()
    share = share / total if total > 1e-6 else memb.mean(0)
    return RegionColour(share.astype(np.float64), lightness.astype(np.float64))


def name_colour(share: np.ndarray, lightness: np.ndarray | None = None, second_min: float = 0.25) -> str:
    """'blue', 'dark blue', 'red and blue': the main colour, with a shade for chromatic colours, and a second
    colour when it covers at least `second_min` of the region."""
    order = np.argsort(-share)
    words = []
    for rank, i in enumerate(order[:2]):
        if rank == 1 and share[i] < second_min:
            break
        colour = COLOURS[i]
        if lightness is not None and colour in CHROMATIC and colour != "brown":
            if lightness[i] < 0.3:
                colour = "dark " + colour
            elif lightness[i] > 0.75 and colour not in ("pink", "yellow"):
                colour = "light " + colour
        words.append(colour)
    return " and ".join(words)


# ---- the model ---------------------------------------------------------------------------------------------------
class AttributeModel:
    """crossroad-0230 on OpenVINO CPU, batched. Thread-safe: the app shares one instance between requests."""

    def __init__(self):
        import openvino as ov

        files = resolve(MODEL_NAME)
        core = ov.Core()
        try:
            model = core.read_model(str(files.path))
        except Exception as e:  # noqa: BLE001 - OpenVINO raises plain RuntimeError on bad IRs
            raise WeightsError(f"{files.path}: OpenVINO could not read the attribute model ({e})") from e
        model.reshape([-1, 3, MODEL_H, MODEL_W])
        self.compiled = core.compile_model(model, "CPU", ov_config(PERFORMANCE_HINT="LATENCY"))
        shapes = [tuple(o.get_partial_shape().get_min_shape()) for o in self.compiled.outputs]
        # Outputs are told apart by shape: one with 8 channels, then the top and bottom points in IR order.
        self._attr_out = next(i for i, s in enumerate(shapes) if len(s) > 1 and s[1] == 8)
        points = [i for i, s in enumerate(shapes) if len(s) > 1 and s[1] == 2]
        if len(points) != 2:
            raise WeightsError(f"{files.path}: unexpected outputs {shapes}; is this person-attributes-"
                               "recognition-crossroad-0230?")
        self._top_out, self._bottom_out = points
        self._lock = threading.Lock()

    def _infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._lock:
            res = self.compiled(batch)
        n = len(batch)
        return (np.asarray(res[self._attr_out]).reshape(n, 8), np.asarray(res[self._top_out]).reshape(n, 2),
                np.asarray(res[self._bottom_out]).reshape(n, 2))

    def predict(self, crops_bgr: Sequence[np.ndarray], batch_size: int = 32) -> list[CropAttributes]:
        """Native-resolution BGR person crops -> one CropAttributes each."""
        out: list[CropAttributes] = []
        for start in range(0, len(crops_bgr), batch_size):
            part = crops_bgr[start:start + batch_size]
            for c in part:
                if not isinstance(c, np.ndarray) or c.ndim != 3 or c.shape[2] != 3 or min(c.shape[:2]) < 2:
                    raise InputError("each crop must be a BGR image array of shape (H, W, 3)")
            batch = np.stack([cv2.resize(c, (MODEL_W, MODEL_H), interpolation=cv2.INTER_LINEAR)
                              .transpose(2, 0, 1) for c in part]).astype(np.float32)
            attrs, tops, bottoms = self._infer(batch)
            for crop, a, t, b in zip(part, attrs, tops, bottoms):
                tx, ty = float(np.clip(t[0], *X_RANGE)), float(np.clip(t[1], *UPPER_Y_RANGE))
                bx, by = float(np.clip(b[0], *X_RANGE)), float(np.clip(b[1], *LOWER_Y_RANGE))
                upper = region_colour(crop, tx, ty, *UPPER_HALF)
                lower = region_colour(crop, bx, min(by + LOWER_SHIFT, LOWER_Y_RANGE[1]), *LOWER_HALF)
                out.append(CropAttributes(a.astype(np.float64), upper, lower, (float(t[0]), float(t[1])),
                                          (float(b[0]), float(b[1]))))
        return out


@lru_cache(maxsize=1)
def load_attribute_model() -> AttributeModel:
    return AttributeModel()


# ---- per track ---------------------------------------------------------------------------------------------------
def aggregate(crops: Sequence[CropAttributes], weights: Sequence[float] | None = None) -> TrackAttributes:
    """Weighted mean of crop descriptions; `weights` (e.g. box height x detector score) favour clear views."""
    if not crops:
        raise InputError("cannot describe a track with no crops")
    w = np.ones(len(crops)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum() if w.sum() > 0 else np.full(len(crops), 1.0 / len(crops))

    def region(get) -> RegionColour:
        shares = w[:, None] * np.stack([get(c).share for c in crops])  # weighted pixel mass per colour
        lights = np.stack([get(c).lightness for c in crops])
        mass = shares.sum(0)
        light = np.where(mass > 1e-9, (shares * lights).sum(0) / np.maximum(mass, 1e-9), 0.5)
        return RegionColour(mass, light)

    probs = (w[:, None] * np.stack([c.probs for c in crops])).sum(0)
    upper, lower = region(lambda c: c.upper), region(lambda c: c.lower)
    mean_vec = np.concatenate([probs, upper.share, lower.share])
    dists = np.array([np.abs(c.vector() - mean_vec).sum() for c in crops])
    # The most typical crop, but only among the better-weighted half, so a tiny far-away view is not the face
    # of the track.
    good = w >= np.median(w)
    representative = int(np.argmin(np.where(good, dists, np.inf)))
    return TrackAttributes(probs, upper, lower, len(crops), representative)


def caption(attrs: TrackAttributes | CropAttributes) -> str:
    """A short description a person can check against the picture: 'man, long sleeves, dark blue top, grey
    trousers, backpack'. Only confident attributes are named."""
    parts = []
    male = attrs.prob("male")
    parts.append("man" if male >= 0.6 else "woman" if male <= 0.4 else "person")
    if attrs.prob("long_hair") >= 0.6:
        parts.append("long hair")
    sleeves = attrs.prob("long_sleeves")
    if sleeves >= 0.6:
        parts.append("long sleeves")
    elif sleeves <= 0.25:
        parts.append("short sleeves")
    garment = "coat" if attrs.prob("coat_jacket") >= 0.5 else "top"
    parts.append(f"{name_colour(attrs.upper.share, attrs.upper.lightness)} {garment}")
    legs = "trousers" if attrs.prob("long_pants") >= 0.5 else "shorts or skirt"
    parts.append(f"{name_colour(attrs.lower.share, attrs.lower.lightness)} {legs}")
    for name, word in (("backpack", "backpack"), ("bag", "bag"), ("hat", "hat")):
        if attrs.prob(name) >= 0.5:
            parts.append(word)
    return ", ".join(parts)
