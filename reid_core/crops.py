"""Cutting person crops out of frames: the fixed 256x128 RGB input every embedder takes, and JPEG for the store."""
from __future__ import annotations

import io
import os

import cv2
import numpy as np

from reid_core.errors import InputError
from reid_core.types import Box

CROP_H, CROP_W = 256, 128
JPEG_QUALITY = 90
# Uploaded query images beyond this are refused before decoding (a person crop is well under 1 MP; 50 MP covers
# a full frame of any camera). REID_MAX_IMAGE_MP changes it.
MAX_IMAGE_PIXELS = int(float(os.environ.get("REID_MAX_IMAGE_MP", "50")) * 1_000_000)


def clip_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer x1, y1, x2, y2 inside the image (at least 1 px wide and tall)."""
    x1 = int(max(0, min(width - 1, round(box.x))))
    y1 = int(max(0, min(height - 1, round(box.y))))
    x2 = int(max(x1 + 1, min(width, round(box.x + box.w))))
    y2 = int(max(y1 + 1, min(height, round(box.y + box.h))))
    return x1, y1, x2, y2


def cut(frame_bgr: np.ndarray, box: Box) -> np.ndarray:
    """The box's pixels at native resolution (BGR), for storage and display."""
    h, w = frame_bgr.shape[:2]
    x1, y1, x2, y2 = clip_box(box, w, h)
    return frame_bgr[y1:y2, x1:x2]


def to_model_input(patch_bgr: np.ndarray) -> np.ndarray:
    """A native-resolution BGR patch -> 256x128 RGB uint8, the layout `Embedder.embed` takes."""
    return to_model_inputs([patch_bgr])[0]


def to_model_inputs(patches_bgr: list[np.ndarray]) -> np.ndarray:
    """Many patches -> (N, 256, 128, 3) RGB uint8 (bilinear resize, BGR to RGB). Resizes straight
    into one preallocated batch and swaps channels in a single pass: stacking per-crop arrays cost the ingest more
    CPU than its JPEG encoding."""
    out = np.empty((len(patches_bgr), CROP_H, CROP_W, 3), np.uint8)
    for i, patch in enumerate(patches_bgr):
        cv2.resize(patch, (CROP_W, CROP_H), dst=out[i], interpolation=cv2.INTER_LINEAR)
    if len(out):
        flat = out.reshape(-1, CROP_W, 3)
        cv2.cvtColor(flat, cv2.COLOR_BGR2RGB, dst=flat)
    return out


def encode_jpeg(patch_bgr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", patch_bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise InputError("could not encode crop as JPEG")
    return buf.tobytes()


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding the pixels; InputError if it is not a picture."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the caller decides on the size
            with Image.open(io.BytesIO(data)) as im:
                return im.size
    except Image.DecompressionBombError:  # PIL refuses to even open images over twice its own limit
        assert Image.MAX_IMAGE_PIXELS is not None  # PIL raises DecompressionBombError only while it has a limit
        raise InputError(f"the image is over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} MP; images up to "
                         f"{MAX_IMAGE_PIXELS / 1e6:.0f} MP are accepted: crop or shrink it first") from None
    except (UnidentifiedImageError, OSError, ValueError, ImportError):
        # ImportError: once ultralytics is imported, its Image.open patch answers an unknown format by trying to
        # load a HEIF plugin, which is not installed (and may not be downloaded)
        raise InputError("not a readable image (expected JPEG or PNG)") from None


def check_image(data: bytes, max_pixels: int | None = None) -> tuple[int, int]:
    """(width, height) of a picture no larger than `max_pixels` (default MAX_IMAGE_PIXELS), from its header alone:
    a 20000x20000 PNG is a few hundred kB on disk and 1.2 GB decoded. InputError otherwise."""
    width, height = image_size(data)
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if width * height > limit:
        raise InputError(f"the image is {width}x{height} px ({width * height / 1e6:.0f} MP); images up to "
                         f"{limit / 1e6:.0f} MP are accepted: crop or shrink it first")
    return width, height


def decode_image(data: bytes, max_pixels: int | None = None) -> np.ndarray:
    """JPEG/PNG bytes -> BGR image; InputError if they are not a picture or larger than `max_pixels` pixels."""
    check_image(data, max_pixels)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError("not a readable image (expected JPEG or PNG)")
    return image


def model_inputs_from_jpegs(jpegs: list[bytes]) -> np.ndarray:
    """Stored crops -> (N, 256, 128, 3) RGB uint8."""
    return to_model_inputs([decode_image(j) for j in jpegs])
