"""Colour naming on synthetic pixels: palette swatches, shade, background, naming (no model; the attribute model on
real crops: tests/integration/test_attributes.py)."""
import numpy as np
import pytest

from reid_core.attributes import COLOURS, colour_memberships, name_colour, region_colour
from reid_core.errors import InputError

# Typical BGR values of each palette colour, in full light.
SWATCHES = {"black": (20, 20, 20), "white": (240, 240, 240), "grey": (128, 128, 128), "red": (30, 30, 200),
            "orange": (20, 140, 250), "yellow": (40, 220, 230), "green": (40, 160, 40), "blue": (190, 90, 30),
            "purple": (150, 40, 110), "pink": (190, 150, 250), "brown": (30, 60, 110)}


def named(bgr, gain=1.0) -> str:
    memb, _ = colour_memberships(np.array([bgr], np.uint8), gain)
    return COLOURS[int(np.argmax(memb[0]))]


@pytest.mark.parametrize("colour", list(SWATCHES))
def test_palette_swatches(colour):
    assert named(SWATCHES[colour]) == colour


@pytest.mark.parametrize("colour", ["red", "green", "blue", "purple", "black"])
@pytest.mark.parametrize("shadow", [0.6, 0.4])
def test_shadow_keeps_the_colour(colour, shadow):
    shaded = tuple(int(v * shadow) for v in SWATCHES[colour])
    assert named(shaded) == colour


def test_shaded_white_crop_stays_white():
    """A white shirt in shade (x0.7) is grey in absolute terms; the crop's exposure gain brings it back."""
    crop = np.full((120, 50, 3), int(235 * 0.7), np.uint8)
    share = region_colour(crop, 0.5, 0.3, 0.2, 0.1, background_weight=0).share
    assert COLOURS[int(np.argmax(share))] == "white"


def test_memberships_are_distributions():
    rng = np.random.default_rng(0)
    memb, light = colour_memberships(rng.integers(0, 256, (500, 3), dtype=np.uint8))
    assert memb.shape == (500, len(COLOURS)) and light.shape == (500,)
    assert np.allclose(memb.sum(1), 1, atol=1e-5) and (memb >= 0).all()
    assert (light >= 0).all() and (light <= 1).all()


def test_background_at_the_sides_is_discounted():
    """A red torso on grass: the window also sees green beside the body, the border sample removes most of it."""
    crop = np.zeros((100, 40, 3), np.uint8)
    crop[:] = SWATCHES["green"]
    crop[:, 14:26] = SWATCHES["red"]
    raw = region_colour(crop, 0.5, 0.3, 0.2, 0.1, background_weight=0).share
    cleaned = region_colour(crop, 0.5, 0.3, 0.2, 0.1).share
    g, r = COLOURS.index("green"), COLOURS.index("red")
    assert cleaned[r] > raw[r] and cleaned[g] < raw[g] and cleaned[r] > 0.8


def test_name_colour_with_shade_and_second_colour():
    share = np.zeros(len(COLOURS))
    share[COLOURS.index("blue")], share[COLOURS.index("red")] = 0.6, 0.3
    light = np.full(len(COLOURS), 0.5)
    light[COLOURS.index("blue")] = 0.2
    assert name_colour(share, light) == "dark blue and red"
    assert name_colour(share, light, second_min=0.4) == "dark blue"


def test_region_colour_rejects_non_images():
    with pytest.raises(InputError):
        region_colour(np.zeros((10, 10), np.uint8), 0.5, 0.5, 0.2, 0.2)
