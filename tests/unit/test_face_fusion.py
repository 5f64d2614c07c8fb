"""Face + body without models: alignment geometry, the fusion rule, the calibrated constants, face records."""
from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest

from reid_core.face import FACE_SIZE, TEMPLATE, align, alignment_matrix, face_quality
from reid_core.fusion import BODY_SCALE, FACE_CLEAR, FACE_SCALE, FACE_THRESHOLD, best_of, fuse
from reid_core.matching import TrackDecision
from reid_core.results import decisions_json, refine
from reid_core.types import Box, FaceSample, Identity, Match

BODY_T = 0.60


def _similar(points: np.ndarray, angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * scale
    return points @ rot.T + np.array(shift)


def test_alignment_takes_a_rotated_scaled_shifted_face_onto_the_template():
    seen = _similar(TEMPLATE.astype(np.float64), 20.0, 2.5, (300.0, 140.0))  # a tilted face, 2.5x the template
    m = alignment_matrix(seen)
    mapped = np.hstack([seen, np.ones((5, 1))]) @ m.T
    np.testing.assert_allclose(mapped, TEMPLATE, atol=1e-3)
    scale = float(np.hypot(m[0, 0], m[0, 1]))
    assert scale == pytest.approx(1 / 2.5, rel=1e-4)  # a similarity: uniform scale, no shear
    assert np.degrees(np.arctan2(m[1, 0], m[0, 0])) == pytest.approx(-20.0, abs=1e-3)


def test_align_puts_the_left_eye_pixel_where_the_template_wants_it():
    image = np.zeros((480, 640, 3), np.uint8)
    seen = _similar(TEMPLATE.astype(np.float64), -10.0, 3.0, (200.0, 100.0))
    x, y = (int(round(v)) for v in seen[0])
    cv2.circle(image, (x, y), 6, (255, 255, 255), -1)
    out = align(image, seen)
    assert out.shape == (FACE_SIZE, FACE_SIZE, 3)
    ys, xs = np.nonzero(out[:, :, 0] > 128)
    assert abs(xs.mean() - TEMPLATE[0, 0]) < 1.0 and abs(ys.mean() - TEMPLATE[0, 1]) < 1.0


def test_face_quality_is_confidence_times_size_saturating():
    assert face_quality(0.9, 48) == pytest.approx(0.45)
    assert face_quality(0.9, 300) == pytest.approx(0.9)


def test_the_calibrated_face_constants_are_present_and_sane():
    # bench/face_calibrate.py: impostor cosines of the photos reach 0.127, genuine start at 0.514
    assert 0.127 < FACE_THRESHOLD < 0.514
    assert FACE_SCALE > 0 and BODY_SCALE > 0 and FACE_CLEAR > 0


@pytest.mark.parametrize("body", [0.2, 0.59, 0.60, 0.61, 0.95])
def test_without_a_face_the_body_decides_exactly(body):
    f = fuse(body, None, BODY_T)
    assert (f.match, f.evidence, f.score) == (body >= BODY_T, "body", body)  # the cosine itself, not rescaled


def test_a_clear_face_decides_against_the_body_both_ways():
    clear = FACE_THRESHOLD + FACE_CLEAR * FACE_SCALE + 0.01
    changed_clothes = fuse(0.20, clear, BODY_T)  # body says someone else, the face says it is them
    assert changed_clothes.match and changed_clothes.evidence == "face"
    look_alike = fuse(0.90, FACE_THRESHOLD - FACE_CLEAR * FACE_SCALE - 0.01, BODY_T)  # same clothes, other face
    assert not look_alike.match and look_alike.evidence == "face"


def test_an_unclear_face_is_summed_with_the_body():
    face = FACE_THRESHOLD + 0.5 * FACE_SCALE  # a little for
    assert fuse(BODY_T - 0.04, face, BODY_T).match  # 0.5 - 0.4 > 0
    tipped = fuse(BODY_T - 0.06, face, BODY_T)  # 0.5 - 0.6 < 0
    assert not tipped.match and tipped.evidence == "face+body"
    assert tipped.score < BODY_T  # the fused score on the body scale agrees with the decision


def test_a_face_only_identity_is_decided_by_the_face_and_needs_one():
    assert fuse(None, FACE_THRESHOLD + 0.01, BODY_T).match
    assert not fuse(None, FACE_THRESHOLD - 0.01, BODY_T).match
    with pytest.raises(ValueError):
        fuse(None, None, BODY_T)
    assert fuse(None, 0.99, BODY_T).score <= 1.0  # clipped to the cosine range


def test_best_of_without_faces_is_the_body_argmax():
    body = {"ann": 0.62, "bob": 0.71, "cy": 0.40}
    name, f = best_of(body, {}, BODY_T)
    assert name == "bob" and f.score == 0.71 and f.match and f.evidence == "body"
    # a face names a photo-only identity over a better body match
    name, f = best_of(body, {"dee": 0.6}, BODY_T)
    assert name == "dee" and f.evidence == "face"
    assert best_of({}, {}, BODY_T) is None


def test_identity_records_keep_their_faces_through_json():
    s = FaceSample(base64.b64encode(np.ones(256, np.float32).tobytes()).decode(), "", 0.9, "photo a.png")
    ident = Identity(**{"name": "ann", "keys": [], "created": 1.0, "faces": [s.__dict__]})
    assert ident.faces == [s] and ident.faces[0].vector().shape == (256,)
    assert Identity(name="old", keys=["k"], created=0.0).faces == []  # records written before faces existed


def _decision(**kw) -> TrackDecision:
    return TrackDecision(1, Match("ann", "ann", 0.8, 0.6), [0, 1], [Box(0, 0, 10, 20)] * 2, ["a", "b"], **kw)


def test_identify_json_has_face_fields_only_where_a_face_took_part():
    plain = decisions_json([_decision()], 0.6)
    assert set(plain) == {"threshold", "tracks"} and "evidence" not in plain["tracks"][0]
    faced = decisions_json([_decision(evidence="face", face_score=0.412345, face_keys=["a"])], 0.6)
    t = faced["tracks"][0]
    assert (t["evidence"], t["face_score"], faced["face_threshold"]) == ("face", 0.4123, FACE_THRESHOLD)
    kept = refine([_decision(evidence="face", face_score=0.4, face_keys=["a"])], from_frame=1)[0]
    assert (kept.evidence, kept.face_score, kept.face_keys) == ("face", 0.4, ["a"])


def test_a_track_carried_to_another_person_keeps_its_own_faces_only():
    from reid_core.face_evidence import MAX_LOOKS, _one_person, _spread

    rng = np.random.default_rng(0)
    me, other = (v / np.linalg.norm(v) for v in rng.normal(size=(2, 256)))
    faces = [(f"k{i}", (me + 0.3 * rng.normal(size=256) / 16, 1.0 - i / 10, Box(0, 0, 40, 40))) for i in range(4)]
    faces.insert(1, ("stranger", (other, 0.99, Box(0, 0, 40, 40))))
    kept = [k for k, _ in _one_person(faces)]
    assert kept == ["k0", "k1", "k2", "k3"]
    assert _spread([str(i) for i in range(100)])[::MAX_LOOKS - 1] == ["0", "99"]
