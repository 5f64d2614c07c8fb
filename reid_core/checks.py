"""Range checks for the numbers and paths users pass to the CLI and the app, done before any work starts so a
bad value costs nothing and changes nothing. Each returns the value (normalised) or raises InputError with the
option's name in the message.

Scores are cosines of L2-normalised features (reid_core.matching): -1..1 mathematically, and 0..1 is the scale
the CLI and the app document and show (as percentages), so thresholds outside 0..1 are refused: -1 would name
every stranger, and NaN compares false with everything and would leak into the JSON output as invalid `NaN`.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from reid_core.errors import InputError

EXPORT_SUFFIXES = (".csv", ".json")


def positive_setting(name: str, default: float, unit: str) -> float:
    """A positive number from the environment variable `name` (a setting such as REID_MAX_UPLOAD_MB)."""
    raw = os.environ.get(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"{name} must be a number of {unit}, got {raw!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise InputError(f"{name} must be more than 0, got {raw!r}")
    return value


def score(value: object, what: str = "--threshold") -> float:
    """A similarity threshold or floor: a finite number in 0..1."""
    try:
        v = float(value)  # type: ignore[arg-type]  # any object on purpose: float() raising is the check
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number between 0 and 1, got {value!r}") from None
    if not math.isfinite(v) or not 0.0 <= v <= 1.0:
        raise InputError(f"{what} must be between 0 and 1 (a cosine similarity), got {value}")
    return v


def count(value: object, what: str = "--top-k", minimum: int = 1) -> int:
    """A whole number of results/crops, at least `minimum`."""
    if isinstance(value, float) and not value.is_integer():  # also NaN and infinities
        raise InputError(f"{what} must be a whole number, got {value!r}")
    try:
        v = int(value)  # type: ignore[call-overload]  # any object on purpose: int() raising is the check
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a whole number, got {value!r}") from None
    if v < minimum:
        raise InputError(f"{what} must be at least {minimum}, got {v}")
    return v


def frame(value: object, what: str = "--from-frame") -> int | None:
    """An optional 0-based frame number (empty or blank text: none)."""
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        return None
    return count(value, what, minimum=0)


def frame_range(start: object, stop: object, names: tuple[str, str] = ("--from-frame", "--to-frame")) \
        -> tuple[int | None, int | None]:
    """An optional first and last frame; `names` are what the caller's user typed them into (CLI options or the
    app's fields)."""
    a, b = frame(start, names[0]), frame(stop, names[1])
    if a is not None and b is not None and a > b:
        raise InputError(f"{names[0]} {a} is after {names[1]} {b}")
    return a, b


def output_path(path: str | Path, suffixes: tuple[str, ...], what: str) -> Path:
    """Where a result file (`what`: the option or thing it is for) may be written: a name ending in one of
    `suffixes`, in a folder that exists. Checked before any work, and a missing folder is refused rather than
    created: it is more often a typo than a wish, and files should not land somewhere unexpected."""
    p = Path(path)
    endings = " or ".join(suffixes)
    if p.suffix.lower() not in suffixes:
        raise InputError(f"{what} must end in {endings}, got {p.name!r}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{what}: folder {str(parent)!r} does not exist; create it first or pick another path")
    if p.is_dir():
        raise InputError(f"{what}: {str(p)!r} is a folder; give a file name ending in {endings}")
    return p


def export_path(path: str | Path) -> Path:
    """Where a result list may be written: .csv or .json."""
    return output_path(path, EXPORT_SUFFIXES, "--export")


# Query images are person crops or single frames; a bigger file is a mistake or an attack, and it would be read
# into memory whole before the pixel cap (reid_core.crops.MAX_IMAGE_PIXELS) could look at its header.
MAX_IMAGE_BYTES = int(float(os.environ.get("REID_MAX_IMAGE_FILE_MB", "50")) * 1024 * 1024)


def image_file(path: str | Path) -> bytes:
    """The bytes of a query image file: it must exist, be at most MAX_IMAGE_BYTES, and have a header saying it is
    a picture of at most the pixel cap (checked without decoding)."""
    from reid_core.crops import check_image

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    size = p.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise InputError(f"{p.name} is {size / 2**20:.0f} MiB; query images up to {MAX_IMAGE_BYTES / 2**20:.0f} "
                         "MiB are accepted")
    data = p.read_bytes()
    check_image(data)
    return data
