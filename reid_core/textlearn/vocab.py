"""Which PETA labels the text branch predicts and talks about (names as in PETA's Label.txt).

Torch-free: the query parser imports these names to map words onto heads.
"""
from __future__ import annotations

# PETA's 11 colour names are the attribute engine's palette (reid_core.attributes.COLOURS), capitalised.
COLOURS = ("black", "white", "grey", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown")
REGIONS = {"upper": "upperBody", "lower": "lowerBody", "hair": "hair", "footwear": "footwear"}
HAIR_COLOURS = ("black", "brown", "grey", "white", "yellow")  # PETA labels no other hair colour often enough


def colour_label(region: str, colour: str) -> str:
    return f"{REGIONS[region]}{colour.capitalize()}"


AGE = ("personalLess15", "personalLess30", "personalLess45", "personalLess60", "personalLarger60")
HAIR = ("hairLong", "hairShort", "hairBald")
UPPER = ("upperBodyLongSleeve", "upperBodyShortSleeve", "upperBodyNoSleeve", "upperBodyJacket", "upperBodyTshirt",
         "upperBodySuit", "upperBodySweater", "upperBodyLogo", "upperBodyPlaid", "upperBodyThinStripes",
         "upperBodyThickStripes", "upperBodyVNeck", "upperBodyFormal", "upperBodyCasual")
LOWER = ("lowerBodyTrousers", "lowerBodyJeans", "lowerBodyShorts", "lowerBodyShortSkirt", "lowerBodyLongSkirt",
         "lowerBodyCapri", "lowerBodyHotPants", "lowerBodySuits", "lowerBodyFormal", "lowerBodyCasual")
FOOTWEAR = ("footwearShoes", "footwearLeatherShoes", "footwearSneakers", "footwearSandals", "footwearBoots",
            "footwearStocking")
CARRYING = ("carryingBackpack", "carryingMessengerBag", "carryingPlasticBags", "carryingOther", "carryingFolder",
            "carryingSuitcase", "carryingLuggageCase", "carryingBabyBuggy", "carryingNothing")
ACCESSORY = ("accessoryHat", "accessorySunglasses", "accessoryHairBand", "accessoryMuffler", "accessoryHeadphone",
             "accessoryNothing")
# Anything carried that a user would call "a bag" (a backpack is asked for by name).
BAGS = ("carryingMessengerBag", "carryingPlasticBags", "carryingSuitcase", "carryingLuggageCase", "carryingOther")

HEADS: tuple[str, ...] = (
    ("personalMale",) + AGE + HAIR + tuple(colour_label("hair", c) for c in HAIR_COLOURS) + UPPER
    + tuple(colour_label("upper", c) for c in COLOURS) + LOWER + tuple(colour_label("lower", c) for c in COLOURS)
    + FOOTWEAR + tuple(colour_label("footwear", c) for c in COLOURS) + CARRYING + ACCESSORY)
HEAD_INDEX = {name: i for i, name in enumerate(HEADS)}


def head_targets(labels) -> list[float]:
    """Multi-hot over HEADS for one identity's label set."""
    return [1.0 if h in labels else 0.0 for h in HEADS]
