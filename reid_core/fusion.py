"""Face + body: score-level fusion of the face cosine and the body cosine into one decision (docs/face.md).

Each score is put on a calibrated scale first: z = (score - its threshold) / its scale, so z = 0 is "at the
threshold" for both and one unit means about as much on each. The rule:
  - no face score (no face on the track, or none enrolled): the body decides, exactly as without faces;
  - no body score (an identity enrolled from a photo only): the face decides;
  - both, and the face is clear (|z_face| >= FACE_CLEAR): the face decides, so a clear face names a person whose
    clothes changed and vetoes a look-alike in the same clothes;
  - both, face unclear: their sum decides ("face+body").
A decision's score is then the fused z on the body scale (body threshold + z * BODY_SCALE, clipped to -1..1; the
body cosine itself when the body decided), so `score >= threshold` still means a match wherever results are
re-decided; the raw face cosine is reported beside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# bench/face_calibrate.py over the face photos (16 genuine / 29 impostor pairs): genuine cosine min 0.514, median
# 0.777; impostor max 0.127, mean -0.011, sd 0.067. Threshold: the impostor 99th percentile of a normal fit
# (1% false accepts), 0.144, rounded up; scale: the impostor sd.
FACE_THRESHOLD = 0.15
FACE_SCALE = 0.07
BODY_SCALE = 0.10  # a tenth of body cosine per unit: the body threshold's distance to the different-person median
FACE_CLEAR = 2.0  # face z beyond +-2 (cosine >= 0.29 or <= 0.01) decides alone

Evidence = Literal["face", "body", "face+body"]


@dataclass(frozen=True)
class Fused:
    match: bool
    z: float  # calibrated evidence for "same person": > 0 for, < 0 against
    evidence: Evidence
    score: float  # z on the body scale (the body cosine when the body decided)


def fuse(body: float | None, face: float | None, body_threshold: float,
         face_threshold: float = FACE_THRESHOLD) -> Fused:
    """One identity against one probe: its body cosine and face cosine (None: not available)."""
    if face is None:
        if body is None:
            raise ValueError("fusion needs a body or a face score")
        return Fused(body >= body_threshold, (body - body_threshold) / BODY_SCALE, "body", body)
    z_face = (face - face_threshold) / FACE_SCALE
    evidence: Evidence
    if body is None or abs(z_face) >= FACE_CLEAR:
        z, evidence = z_face, "face"
    else:
        z, evidence = z_face + (body - body_threshold) / BODY_SCALE, "face+body"
    # clipped to the cosine range so it reads like the other scores; the clip keeps score >= threshold <=> z >= 0
    return Fused(z >= 0, z, evidence, min(1.0, max(-1.0, body_threshold + z * BODY_SCALE)))


def best_of(body: dict[str, float], face: dict[str, float], body_threshold: float) -> tuple[str, Fused] | None:
    """The identity with the most evidence for it among those with a body or face score, and its fused
    decision; None when there is none. Without face scores the order is the body cosine's, as before."""
    fused = {n: fuse(body.get(n), face.get(n), body_threshold) for n in sorted(set(body) | set(face))}
    if not fused:
        return None
    name = max(fused, key=lambda n: fused[n].z)
    return name, fused[name]
