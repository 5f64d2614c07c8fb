"""The small typed records that cross module boundaries (video -> detections -> tracks -> crops -> store -> matches)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in pixels, top-left corner plus size (the MOTChallenge convention)."""

    x: float
    y: float
    w: float
    h: float

    @classmethod
    def from_xyxy(cls, x1: float, y1: float, x2: float, y2: float) -> Box:
        return cls(float(x1), float(y1), float(x2 - x1), float(y2 - y1))

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return self.x, self.y, self.x + self.w, self.y + self.h

    def as_list(self) -> list[float]:
        return [round(self.x, 1), round(self.y, 1), round(self.w, 1), round(self.h, 1)]

    def iou(self, other: Box) -> float:
        ax1, ay1, ax2, ay2 = self.xyxy
        bx1, by1, bx2, by2 = other.xyxy
        iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
        ih = max(0.0, min(ay2, by2) - max(ay1, by1))
        inter = iw * ih
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0

    def contains(self, px: float, py: float) -> bool:
        return self.x <= px <= self.x + self.w and self.y <= py <= self.y + self.h


def iou_matrix(a: list[Box], b: list[Box]) -> np.ndarray:
    """(len(a), len(b)) IoU of every pair, vectorised: Box.iou for whole frames of boxes at once."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    A = np.array([x.xyxy for x in a])
    B = np.array([x.xyxy for x in b])
    iw = np.clip(np.minimum(A[:, None, 2], B[None, :, 2]) - np.maximum(A[:, None, 0], B[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(A[:, None, 3], B[None, :, 3]) - np.maximum(A[:, None, 1], B[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (A[:, 2] - A[:, 0]) * (A[:, 3] - A[:, 1])
    area_b = (B[:, 2] - B[:, 0]) * (B[:, 3] - B[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


@dataclass(frozen=True)
class VideoInfo:
    path: str
    video_id: str  # sha256 of the file's bytes, so renamed copies are recognised
    fps: float
    frame_count: int
    width: int
    height: int


@dataclass(frozen=True)
class Detection:
    """One person box in one frame, as the detector gave it."""

    frame: int
    box: Box
    score: float


@dataclass
class Crop:
    """One stored person image: where it came from, which track it belongs to, and its feature."""

    key: str  # "{video_id}/{frame:08d}_{bb:02d}"
    video_id: str
    camera: str
    frame: int
    box: Box
    score: float
    track_id: int
    jpeg: bytes | None = None
    feature: np.ndarray | None = None  # also None when fetched with feature=True for a crop stored without one
    interpolated: bool = False  # the box was interpolated between detections (ingest's detect_every > 1)


@dataclass
class Track:
    """A person followed through consecutive frames of one video. After appearance segmentation
    (reid_core/segments.py) a track that switched people is several Tracks with the same track_id and
    `segment` 1, 2, ... in time order (0: an unsplit track)."""

    track_id: int
    video_id: str
    camera: str
    keys: list[str] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    segment: int = 0

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def label(self) -> str:
        """How people see it: "12" for a whole track, "12.2" for the second segment of a split one."""
        return f"{self.track_id}.{self.segment}" if self.segment else str(self.track_id)

    def box_at(self, frame: int) -> Box | None:
        for f, b in zip(self.frames, self.boxes):
            if f == frame:
                return b
        return None


@dataclass
class FaceSample:
    """One enrolled face of an identity that comes from no stored crop (a photo): its 256-d feature (float32
    bytes, base64) and a small aligned thumbnail (JPEG, base64), kept in the identity record so they go with it."""

    feature: str
    thumb: str
    quality: float
    source: str  # where it came from, e.g. "photo lin.png"

    def vector(self) -> np.ndarray:
        import base64

        return np.frombuffer(base64.b64decode(self.feature), np.float32).copy()


@dataclass
class Identity:
    """An enrolled person: a name, the crops that define their body (possibly none) and enrolled face photos
    (possibly none); faces seen on the enrolled crops are annotations of those crops (reid_core/face_evidence.py)."""

    name: str
    keys: list[str] = field(default_factory=list)
    created: float = 0.0
    faces: list[FaceSample] = field(default_factory=list)

    def __post_init__(self):
        self.faces = [f if isinstance(f, FaceSample) else FaceSample(**f) for f in self.faces]


@dataclass(frozen=True)
class Match:
    """A decision on one probe (a track or an image) against the gallery, on the cosine similarity scale."""

    identity: str | None  # None: below threshold, i.e. "unknown"
    best_match: str | None
    score: float
    threshold: float
