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

    def as_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        return settings_digest(self.as_dict())

    def matches(self, stored: dict) -> bool:
        """Whether a run's stored settings are these (runs stored before a knob existed lack its key)."""
        return settings_digest(stored) == self.digest()


def settings_digest(d: dict) -> str:
    """The run id's settings part. Knobs that became settings after stores existed (LEGACY_KNOBS) count only when
    changed from the value they always had, so stored runs keep their ids."""
    d = json.loads(json.dumps(d))
    for section, values in LEGACY_KNOBS.items():
        for key, value in values.items():
            if d.get(section, {}).get(key, value) == value:
                d.get(section, {}).pop(key, None)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


# Values these knobs had while they were hard-coded in tracking.py (before 2026-12-01).
LEGACY_KNOBS = {"tracker": {"gmc_method": "none", "proximity_thresh": 0.5, "appearance_thresh": 0.0}}


def ingest_settings_for(embedder: str) -> IngestSettings:
    """Ingest settings for an embedder: the tracker's appearance gate is on that embedder's cosine scale."""
    return IngestSettings(tracker=TrackerConfig(appearance_gate=calibration_for(embedder).appearance_gate),
                          embedder=embedder)


@dataclass(frozen=True)
class Settings:
    store: Path
    ingest: IngestSettings

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
        """$REID_STORE and $REID_EMBEDDER, unless given (a CLI option or the app's argument wins)."""
        env = os.environ if env is None else env
        name = embedder or env.get("REID_EMBEDDER") or DEFAULT_MODEL
        return cls(Path(store or env.get("REID_STORE") or DEFAULT_STORE), ingest_settings_for(name))

    def with_embedder(self, embedder: str) -> Settings:
        return replace(self, ingest=ingest_settings_for(embedder))

    def with_store(self, store: str | Path) -> Settings:
        return replace(self, store=Path(store))


def current(settings: Settings | None = None) -> Settings:
    """`settings`, or the environment's now (for library calls made without them)."""
    return settings if settings is not None else Settings.from_env()


def ingest_settings(settings: IngestSettings | None = None) -> IngestSettings:
    return settings if settings is not None else Settings.from_env().ingest
