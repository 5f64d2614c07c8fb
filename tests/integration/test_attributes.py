"""Colour naming on real crops and the crossroad-0230 attribute model on PETS09 crops (colour naming on synthetic
pixels: tests/unit/test_attributes_colour.py)."""
import json
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from reid_core.attributes import ATTRIBUTES, COLOURS, CropAttributes, aggregate, caption, load_attribute_model
from reid_core.crops import cut
from reid_core.errors import InputError
from reid_core.groundtruth import load_mot_gt, load_persons
from reid_core.video import read_frames
from tests.integration.conftest import GT, PERSONS, VIDEO
from tests.unit.test_attributes_colour import SWATCHES

LABELS = Path(__file__).parents[1] / "data" / "pets_person_labels.json"


# ---- the real model on real crops ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def person_crops() -> dict[str, list[np.ndarray]]:
    """Every 20th frame's gt crops (at least 60 px tall), by person."""
    gt, persons = load_mot_gt(GT), load_persons(PERSONS)
    out = defaultdict(list)
    for f, img in read_frames(VIDEO):
        if f % 20:
            continue
        for gid, box in gt.get(f, []):
            if box.h >= 60:
                out[persons[gid]].append(cut(img, box).copy())
    return dict(out)


@pytest.fixture(scope="module")
def described(person_crops):
    model = load_attribute_model()
    return {p: model.predict(c) for p, c in person_crops.items()}


def test_model_outputs(described):
    crops = [c for cs in described.values() for c in cs]
    probs = np.stack([c.probs for c in crops])
    assert probs.shape == (len(crops), len(ATTRIBUTES)) and (probs >= 0).all() and (probs <= 1).all()
    tops = np.array([c.top_point for c in crops])
    bottoms = np.array([c.bottom_point for c in crops])
    # Verified by experiment: the first point is on the chest, the second on the thighs, both mid-body.
    assert 0.25 < np.median(tops[:, 1]) < 0.4 and 0.55 < np.median(bottoms[:, 1]) < 0.75
    assert 0.35 < np.median(tops[:, 0]) < 0.65 and 0.35 < np.median(bottoms[:, 0]) < 0.65


def test_gender_separates_on_pets(described):
    """Crop-level AUC of is_male against the hand labels; 0.5 is chance. Measured 0.83 (0.72 when fed RGB)."""
    labels = json.loads(LABELS.read_text())["persons"]
    male = [c.prob("male") for p, cs in described.items() for c in cs if labels[p]["gender"] == "male"]
    female = [c.prob("male") for p, cs in described.items() for c in cs if labels[p]["gender"] == "female"]
    auc = (np.array(male)[:, None] > np.array(female)[None, :]).mean()
    assert auc > 0.75
    per = {p: aggregate(cs).prob("male") for p, cs in described.items()}
    assert per["p05"] < 0.4 and per["p02"] < 0.4 and per["p07"] > 0.6 and per["p04"] > 0.6


def test_hat_is_highest_for_the_woman_in_the_white_hat(described):
    per = {p: aggregate(cs).prob("hat") for p, cs in described.items()}
    assert max(per, key=per.get) == "p08"


def test_colour_naming_agrees_with_hand_labels(described):
    labels = json.loads(LABELS.read_text())["persons"]
    upper_ok = lower_ok = 0
    for p, cs in described.items():
        a = aggregate(cs)
        lab = labels[p]
        upper = COLOURS[int(np.argmax(a.upper.share))]
        lower = COLOURS[int(np.argmax(a.lower.share))]
        upper_ok += upper == lab["upper"] or upper in lab.get("upper_alt", [])
        lower_ok += lower == lab["lower"] or lower in lab.get("lower_alt", [])
    # measured 10/10 and 9/10 (p02's long black coat hides much of her jeans)
    assert upper_ok >= 9 and lower_ok >= 8


def test_captions_describe_people(described):
    assert caption(aggregate(described["p05"])).startswith("woman")
    assert "red top" in caption(aggregate(described["p05"]))
    assert "blue top" in caption(aggregate(described["p10"])) and "grey" in caption(aggregate(described["p10"]))


def test_serialisation_round_trip(described):
    c = described["p03"][0]
    back = CropAttributes.from_bytes(c.to_bytes())
    assert np.allclose(back.probs, c.probs, atol=1e-6) and np.allclose(back.upper.share, c.upper.share, atol=1e-6)
    assert np.allclose(back.lower.lightness, c.lower.lightness, atol=1e-6)
    with pytest.raises(ValueError):
        CropAttributes.from_bytes(b"\x02\x00" + c.to_bytes()[2:])


def test_aggregate_picks_a_typical_crop(described):
    cs = described["p05"]
    odd = CropAttributes(cs[0].probs, cs[0].lower, cs[0].upper, cs[0].top_point, cs[0].bottom_point)  # swapped
    a = aggregate([odd] + cs[:5])
    assert a.crops == 6 and a.representative != 0


def test_predict_rejects_bad_crops():
    model = load_attribute_model()
    with pytest.raises(InputError):
        model.predict([np.zeros((10, 10), np.uint8)])
    assert model.predict([]) == []


def test_batching_does_not_change_results(person_crops):
    model = load_attribute_model()
    crops = person_crops["p01"][:5]
    one = np.stack([model.predict([c])[0].probs for c in crops])
    batch = np.stack([a.probs for a in model.predict(crops, batch_size=4)])
    assert np.allclose(one, batch, atol=1e-4)


def test_synthetic_person_colours():
    """A drawn figure: red top, blue trousers, on grey road."""
    crop = np.full((160, 64, 3), 150, np.uint8)
    cv2.rectangle(crop, (18, 30), (46, 80), SWATCHES["red"], -1)
    cv2.rectangle(crop, (20, 80), (44, 150), SWATCHES["blue"], -1)
    a = load_attribute_model().predict([crop])[0]
    assert COLOURS[int(np.argmax(a.upper.share))] == "red"
    assert COLOURS[int(np.argmax(a.lower.share))] == "blue"
