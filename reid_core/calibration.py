"""Per-embedder decision constants: every cosine threshold in the pipeline, in one place.

Cosine scales differ between embedders (OSNet x0.25 puts two different PETS people at a median 0.50 and the same
person at 0.92; Intel 0287 at 0.11 and 0.90), so a threshold only means something for the embedder it was measured
on. Each value below is measured on PETS09-S2L1 with the tracker's own tracks (never on PETA, which is test data);
how: docs/identify.md. An embedder without an entry (a model trained with `reid train`) gets the entry of the
network it was trained from when the name says so, else the OSNet values, and `reid info` says which.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Calibration:
    appearance_gate: float  # tracker: min cosine(detection, track's smoothed feature) to extend a track
    change_similarity: float  # segments: below this the two sides of a track are different people
    link_similarity: float  # enrollment: min cosine for a later fragment to continue the clicked person's visit
    outlier_similarity: float  # enrollment: a crop below this cosine to the enrolled mean is left out
    threshold: float  # identity decision (enroll warnings, verify, identify, search "match")


CALIBRATIONS = {
    # bench/appearance_stats.py: crop vs track feature, same person 1st pct 0.62 / other person in the same frame
    # 99th pct 0.40; 12-crop means: same 5th pct 0.49, different 95th pct 0.34. Threshold: bench/calibrate.py.
    "person-reidentification-retail-0287": Calibration(0.45, 0.40, 0.50, 0.45, 0.60),
    "person-reidentification-retail-0288": Calibration(0.45, 0.40, 0.50, 0.45, 0.60),
    # crop vs track: same 1st pct 0.76 / other 99th pct 0.78 (they overlap: one reason it is no longer the default)
    "osnet_x0_25_msmt17": Calibration(0.60, 0.55, 0.70, 0.50, 0.80),
}
FALLBACK = "osnet_x0_25_msmt17"


def calibration_source(embedder: str) -> str:
    """Which entry of CALIBRATIONS an embedder's constants come from (shown by `reid info`)."""
    if embedder in CALIBRATIONS:
        return embedder
    return next((name for name in CALIBRATIONS if name in embedder), FALLBACK)


def calibration_for(embedder: str) -> Calibration:
    return CALIBRATIONS[calibration_source(embedder)]
