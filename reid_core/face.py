"""Faces in pictures: find them, align them on five landmarks, embed them (Intel Open Model Zoo, OpenVINO CPU).

face-detection-retail-0004 (300x300 BGR in, [1,1,200,7] out: image, label, confidence, normalised x0,y0,x1,y1),
landmarks-regression-retail-0009 (48x48 BGR face in, 10 normalised x,y out: eyes, nose tip, mouth corners) and
face-reidentification-retail-0095 (128x128 BGR aligned face in, 256-d out, compared by cosine). Layouts were read
from the IRs (`model.inputs`); mean/scale are baked into them, so pixels go in as 0-255.
A face below MIN_FACE_PX is never used: the embedding of a 20 px face says little about who it is (PETS faces are
7-11 px: no face evidence there at all). Threshold and fusion with the body score: reid_core/fusion.py.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from reid_core.errors import WeightsError
from reid_core.precision import ov_config
from reid_core.types import Box
from reid_core.vectors import l2_normalize
from reid_core.weights import resolve

DETECTOR = "face-detection-retail-0004"
LANDMARKS = "landmarks-regression-retail-0009"
EMBEDDER = "face-reidentification-retail-0095"
MIN_FACE_PX = 36  # face box height; smaller faces are not detected reliably nor embedded usefully
MIN_CONFIDENCE = 0.6  # detector confidence below this is mostly ears, hands and patterned cloth
FACE_SIZE = 128  # the embedder's input
# Where the five landmarks sit in the embedder's 128x128 input: the template Intel's face_recognition_demo aligns
# onto (given there on a 96x112 canvas, as fractions of it).
TEMPLATE = np.array([(30.2946 / 96, 51.6963 / 112), (65.5318 / 96, 51.5014 / 112), (48.0252 / 96, 71.7366 / 112),
                     (33.5493 / 96, 92.3655 / 112), (62.7299 / 96, 92.2041 / 112)], np.float32) * FACE_SIZE
ROI_SCALE = 1.15  # the landmark model was trained on detector boxes enlarged by this (the Intel demo's factor)


@dataclass(frozen=True)
class FaceBox:
    """A detected face in image pixels."""

    box: Box
    confidence: float

    @property
    def quality(self) -> float:
        return face_quality(self.confidence, self.box.h)


@dataclass(frozen=True)
class Face:
    """A detected, aligned and embedded face."""

    box: Box
    confidence: float
    landmarks: np.ndarray  # (5, 2) image pixels
    aligned: np.ndarray  # 128x128 BGR uint8
    feature: np.ndarray  # (256,) float32, L2-normalised

    @property
    def quality(self) -> float:
        return face_quality(self.confidence, self.box.h)


def face_quality(confidence: float, height: float) -> float:
    """Detector confidence x size (saturating at 96 px, about where the 128 px embedder input stops gaining)."""
    return float(confidence) * min(1.0, float(height) / 96.0)


def alignment_matrix(landmarks: np.ndarray) -> np.ndarray:
    """The 2x3 similarity transform (rotation, uniform scale, shift) taking the five landmarks onto TEMPLATE."""
    m, _ = cv2.estimateAffinePartial2D(np.asarray(landmarks, np.float32).reshape(5, 2), TEMPLATE, method=cv2.LMEDS)
    if m is None:  # degenerate points (all on one spot): fall back to a plain least-squares fit
        m, _ = cv2.estimateAffinePartial2D(np.asarray(landmarks, np.float32).reshape(5, 2), TEMPLATE)
    if m is None:
        raise ValueError("the landmarks do not define a face pose")
    return m


def align(image_bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The face warped so its landmarks sit on TEMPLATE: 128x128 BGR."""
    return cv2.warpAffine(image_bgr, alignment_matrix(landmarks), (FACE_SIZE, FACE_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def _roi(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    w, h = box.w * ROI_SCALE, box.h * ROI_SCALE
    x1, y1 = int(max(0, round(cx - w / 2))), int(max(0, round(cy - h / 2)))
    x2, y2 = int(min(width, round(cx + w / 2))), int(min(height, round(cy + h / 2)))
    return x1, y1, max(x1 + 1, x2), max(y1 + 1, y2)


class FaceModels:
    """The three networks, compiled once. Thread-safe: the app shares one instance between requests."""

    def __init__(self):
        import openvino as ov

        core = ov.Core()
        self._compiled = {}
        for name in (DETECTOR, LANDMARKS, EMBEDDER):
            files = resolve(name)
            try:
                model = core.read_model(str(files.path))
            except Exception as e:  # noqa: BLE001 - OpenVINO raises plain RuntimeError on bad IRs
                raise WeightsError(f"{files.path}: OpenVINO could not read {name} ({e})") from e
            if name != DETECTOR:  # the detector's output holds one image's boxes: it stays at batch 1
                model.reshape([-1, *list(model.inputs[0].get_partial_shape().get_min_shape())[1:]])
            self._compiled[name] = core.compile_model(model, "CPU", ov_config(PERFORMANCE_HINT="LATENCY"))
        self._lock = threading.Lock()

    def _run(self, name: str, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            return np.asarray(self._compiled[name](batch)[0])

    def detect(self, image_bgr: np.ndarray, min_face_px: float = MIN_FACE_PX,
               min_confidence: float = MIN_CONFIDENCE) -> list[FaceBox]:
        """Faces at least `min_face_px` tall, most confident first."""
        h, w = image_bgr.shape[:2]
        if h < min_face_px or w < min_face_px * 0.6:
            return []
        x = cv2.resize(image_bgr, (300, 300), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)[None]
        out = self._run(DETECTOR, x.astype(np.float32)).reshape(-1, 7)
        faces = []
        for _, _, conf, x0, y0, x1, y1 in out:
            if conf < min_confidence:
                continue
            box = Box.from_xyxy(max(0.0, x0) * w, max(0.0, y0) * h, min(1.0, x1) * w, min(1.0, y1) * h)
            if box.h >= min_face_px and box.w >= min_face_px * 0.5:
                faces.append(FaceBox(box, float(conf)))
        return sorted(faces, key=lambda f: -f.confidence)

    def landmarks(self, image_bgr: np.ndarray, boxes: list[FaceBox]) -> list[np.ndarray]:
        """(5, 2) image-pixel landmarks per face box."""
        if not boxes:
            return []
        h, w = image_bgr.shape[:2]
        rois = [_roi(b.box, w, h) for b in boxes]
        batch = np.stack([cv2.resize(image_bgr[y1:y2, x1:x2], (48, 48), interpolation=cv2.INTER_LINEAR)
                          .transpose(2, 0, 1) for x1, y1, x2, y2 in rois]).astype(np.float32)
        pts = self._run(LANDMARKS, batch).reshape(len(boxes), 5, 2)
        return [p * np.array([x2 - x1, y2 - y1], np.float32) + np.array([x1, y1], np.float32)
                for p, (x1, y1, x2, y2) in zip(pts, rois)]

    def embed(self, aligned: list[np.ndarray]) -> np.ndarray:
        """128x128 BGR aligned faces -> (N, 256) L2-normalised float32."""
        if not aligned:
            return np.zeros((0, 256), np.float32)
        batch = np.stack([a.transpose(2, 0, 1) for a in aligned]).astype(np.float32)
        feats = self._run(EMBEDDER, batch).reshape(len(aligned), -1)
        return np.stack([l2_normalize(f) for f in feats]).astype(np.float32)

    def faces(self, image_bgr: np.ndarray, min_face_px: float = MIN_FACE_PX) -> list[Face]:
        """detect -> landmarks -> align -> embed, most confident first."""
        boxes = self.detect(image_bgr, min_face_px)
        points = self.landmarks(image_bgr, boxes)
        aligned = [align(image_bgr, p) for p in points]
        feats = self.embed(aligned)
        return [Face(b.box, b.confidence, p, a, f) for b, p, a, f in zip(boxes, points, aligned, feats)]


@lru_cache(maxsize=1)
def load_face_models() -> FaceModels:
    try:
        return FaceModels()
    except WeightsError as e:  # the body alone works without them: say how to get there
        raise WeightsError(f"{e}\nFace evidence needs these models; without them set REID_FACES=0 and the body "
                           f"alone decides.") from None
