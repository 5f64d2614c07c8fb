"""Every setting that comes from outside (environment, CLI options, the app's start), read in one place.

The CLI builds one `Settings` per command (from its options and the environment) and the app one at start-up; both
pass it down to the library calls. A library call made without settings (the Python API) reads the environment at
that moment, never at import time, so changing `REID_EMBEDDER` between two calls is seen by the second.
Derived values refer to their source: the thresholds come from the embedder's calibration (reid_core/calibration.py)
and the tracker's appearance gate is that calibration's gate.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from reid_core.calibration import Calibration, calibration_for
from reid_core.detection import DetectorConfig
from reid_core.embedding import DEFAULT_MODEL
from reid_core.segments import SegmentConfig
from reid_core.tracking import TrackerConfig

DEFAULT_STORE = "gallery"


@dataclass(frozen=True)
class IngestSettings:
    """Everything that changes what an ingest stores; its digest is part of every run's id, so other settings never
    silently reuse a run."""

    detector: DetectorConfig = DetectorConfig()
    tracker: TrackerConfig = TrackerConfig()
    embedder: str = DEFAULT_MODEL
    backend: str = "openvino"
    flip: bool = False
    # 1: every confident crop gets a feature; S > 1: ambiguous crops plus one per S processed frames of each
    # unambiguous chain (reid_core/sampling.py). 5 costs nothing measurable in IDF1/purity (docs/ingest.md).
    feature_every: int = 5
    # 1: the detector runs on every processed frame; K > 1: on every K-th, the tracker predicting in between and
    # the boxes of the frames between two detections of a track interpolated (stored, marked, without features).
    # 0: chosen per video from its frame rate (for_video).
    detect_every: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        return settings_digest(self.as_dict())

    def matches(self, stored: dict) -> bool:
        """Whether a run's stored settings are these (runs stored before a knob existed lack its key)."""
        return settings_digest(stored) == self.digest()

    def covers(self, stored: dict) -> bool:
        """Whether a run stored with `stored` serves these settings' flows: the same settings, or the same but for
        how densely it detected and embedded (every flow reads both kinds of run), so footage ingested before the
        sampling defaults changed is used, not ingested again."""
        mine = {k: v for k, v in self.as_dict().items() if k not in SAMPLING_KNOBS}
        theirs = {k: v for k, v in stored.items() if k not in SAMPLING_KNOBS}
        return settings_digest(theirs) == settings_digest(mine)

    def for_video(self, fps: float, stride: int = 1) -> IngestSettings:
        """These settings with detect_every decided for a video: the detector every 2nd frame when that still runs
        it at least DETECTIONS_PER_S times a second, else every frame (always for a strided ingest, which already
        skips the frames between). Measured on PETS09-S2L1 (7 fps): every 2nd frame keeps IDF1 and purity, every
        3rd (2.3 detections/s) loses a third of the IDF1 (docs/ingest.md)."""
        if self.detect_every:
            return self
        return replace(self, detect_every=2 if stride == 1 and fps / 2 >= DETECTIONS_PER_S else 1)


SAMPLING_KNOBS = ("feature_every", "detect_every")
DETECTIONS_PER_S = 3.5


def settings_digest(d: dict) -> str:
    """The run id's settings part. Knobs that became settings after stores existed (LEGACY_KNOBS) count only when
    changed from the value they always had, so stored runs keep their ids."""
    d = json.loads(json.dumps(d))
    for section, values in LEGACY_KNOBS.items():
        where = d if section == "" else d.get(section, {})
        for key, value in values.items():
            if where.get(key, value) == value:
                where.pop(key, None)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


# Values these knobs had while they were hard-coded in tracking.py (before 2026-12-01), or before they existed
# ("": top-level knobs; every crop embedded and every frame detected until 2026-12-02).
LEGACY_KNOBS: dict[str, dict[str, object]] = {
    "tracker": {"gmc_method": "none", "proximity_thresh": 0.5, "appearance_thresh": 0.0},
    "": {"feature_every": 1, "detect_every": 1},
}


def ingest_settings_for(embedder: str) -> IngestSettings:
    """Ingest settings for an embedder: the tracker's appearance gate is on that embedder's cosine scale."""
    return IngestSettings(tracker=TrackerConfig(appearance_gate=calibration_for(embedder).appearance_gate),
                          embedder=embedder)


@dataclass(frozen=True)
class Settings:
    store: Path
    ingest: IngestSettings
    faces: bool = True  # face evidence in verify/identify ($REID_FACES=0 turns it off: the body alone decides)

    @property
    def embedder(self) -> str:
        return self.ingest.embedder

    @property
    def calibration(self) -> Calibration:
        return calibration_for(self.embedder)

    @property
    def threshold(self) -> float:
        """The identity decision threshold (verify, identify, enrollment warnings) for this embedder."""
        return self.calibration.threshold

    @property
    def segments(self) -> SegmentConfig:
        return SegmentConfig(change_similarity=self.calibration.change_similarity)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, store: str | Path | None = None,
                 embedder: str | None = None) -> Settings:
        """$REID_STORE and $REID_EMBEDDER, unless given (a CLI option or the app's argument wins); $REID_FACES."""
        env = os.environ if env is None else env
        name = embedder or env.get("REID_EMBEDDER") or DEFAULT_MODEL
        faces = (env.get("REID_FACES") or "1").strip().lower() not in ("0", "off", "false", "no")
        return cls(Path(store or env.get("REID_STORE") or DEFAULT_STORE), ingest_settings_for(name), faces)

    def with_embedder(self, embedder: str) -> Settings:
        return replace(self, ingest=ingest_settings_for(embedder))

    def with_store(self, store: str | Path) -> Settings:
        return replace(self, store=Path(store))


def current(settings: Settings | None = None) -> Settings:
    """`settings`, or the environment's now (for library calls made without them)."""
    return settings if settings is not None else Settings.from_env()


def ingest_settings(settings: IngestSettings | None = None) -> IngestSettings:
    return settings if settings is not None else Settings.from_env().ingest
