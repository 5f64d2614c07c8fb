"""The text-query parser: synonyms, word order, negation, colour variants, unknown words, typos."""
import pytest

from reid_core.errors import InputError
from reid_core.text_query import WEIGHTS, parse


def explicit(query: str) -> set[tuple]:
    """Stated constraints as comparable tuples: ("male", True), ("bag", False), ("upper", "red", True, shade)."""
    out = set()
    for c in parse(query).constraints:
        if c.implied:
            continue
        if c.kind == "attribute":
            out.add((c.target, c.positive))
        else:
            main = tuple(sorted(k for k, v in c.colour.credits if v == 1.0))
            out.add((c.target, main if len(main) > 1 else main[0], c.positive, c.colour.shade))
    return out


M, F = ("male", True), ("male", False)

PHRASINGS = [
    # the example and plain word-order variants
    ("A man in a red hoodie with a backpack", {M, ("upper", "red", True, None), ("backpack", True)}),
    ("man with a backpack wearing a red hoodie", {M, ("upper", "red", True, None), ("backpack", True)}),
    ("red hoodie, backpack, male", {M, ("upper", "red", True, None), ("backpack", True)}),
    ("woman in a red top and blue jeans", {F, ("upper", "red", True, None), ("lower", "blue", True, None)}),
    ("blue jeans and a red top, female", {F, ("upper", "red", True, None), ("lower", "blue", True, None)}),
    # gender synonyms
    ("a guy in a black jacket", {M, ("upper", "black", True, None)}),
    ("gentleman wearing grey trousers", {M, ("lower", "grey", True, None)}),
    ("lady with a handbag", {F, ("bag", True)}),
    ("girl in a pink skirt", {F, ("lower", "pink", True, None)}),
    ("she wears a yellow coat", {F, ("upper", "yellow", True, None)}),
    # garment synonyms and colour variants
    ("man in a navy blue sweater", {M, ("upper", "blue", True, "dark")}),
    ("person in a light-blue t-shirt", {("upper", "blue", True, "light")}),
    ("someone in gray pants", {("lower", "grey", True, None)}),
    ("a person in a crimson jumper", {("upper", "red", True, None)}),
    ("pedestrian in a reddish top", {("upper", "red", True, None)}),
    ("woman in a pale pink cardigan", {F, ("upper", "pink", True, "light")}),
    ("man in a dark green parka", {M, ("upper", "green", True, "dark")}),
    ("person wearing beige chinos", {("lower", "brown", True, None)}),
    ("man in a teal shirt", {M, ("upper", ("blue", "green"), True, None)}),
    ("woman in a black and white striped top", {F, ("upper", "black", True, None), ("upper", "white", True, None)}),
    # colour after the garment
    ("a jacket in red and trousers that are grey", {("upper", "red", True, None), ("lower", "grey", True, None)}),
    # colour without a garment
    ("a person dressed all in black", {("both", "black", True, None)}),
    ("woman in red", {F, ("any", "red", True, None)}),
    ("man in black with blue jeans", {M, ("upper", "black", True, None), ("lower", "blue", True, None)}),
    # accessories and hair
    ("man wearing a cap", {M, ("hat", True)}),
    ("someone carrying a rucksack", {("backpack", True)}),
    ("woman with a ponytail and a purse", {F, ("long_hair", True), ("bag", True)}),
    ("woman with long hair", {F, ("long_hair", True)}),
    ("a bald man", {M, ("long_hair", False)}),
    ("man with short hair in a long-sleeved shirt", {M, ("long_hair", False), ("long_sleeves", True)}),
    # negation
    ("man without a bag", {M, ("bag", False)}),
    ("no hat or backpack", {("hat", False), ("backpack", False)}),
    ("neither a hat nor a bag", {("hat", False), ("bag", False)}),
    ("woman who doesn't have a backpack", {F, ("backpack", False)}),
    ("person not wearing a hat, in a green coat", {("hat", False), ("upper", "green", True, None)}),
    ("without a hat and bag, in a green jacket", {("hat", False), ("bag", False), ("upper", "green", True, None)}),
    ("no hat and a red jacket", {("hat", False), ("upper", "red", True, None)}),
    ("man not in a red top", {M, ("upper", "red", False, None)}),
    ("not a woman, with a bag", {M, ("bag", True)}),
    ("bareheaded man w/o backpack", {M, ("hat", False), ("backpack", False)}),
    ("man who is not carrying anything", {M, ("bag", False), ("backpack", False)}),
    ("person in an all-grey outfit", {("both", "grey", True, None)}),
    # upper case and punctuation
    ("WOMAN; RED JACKET; NO BAG!", {F, ("upper", "red", True, None), ("bag", False)}),
]


@pytest.mark.parametrize("query,expected", PHRASINGS, ids=[q for q, _ in PHRASINGS])
def test_phrasings(query, expected):
    assert explicit(query) == expected, parse(query).describe()


def test_at_least_thirty_phrasings():
    assert len(PHRASINGS) >= 30


def test_unknown_words_are_reported_not_guessed():
    p = parse("a man with a moustache and a frobnicated zorblax")
    assert {("male", True)} == explicit("a man with a moustache and a frobnicated zorblax")
    assert "moustache" in p.unknown_words and "frobnicated" in p.unknown_words and "zorblax" in p.unknown_words
    assert "a" not in p.unknown_words and "with" not in p.unknown_words


def test_colours_of_things_the_model_cannot_see_do_not_leak_onto_clothes():
    p = parse("woman with red hair and white sneakers in a blue coat")
    assert explicit(p.text) == {F, ("upper", "blue", True, None)}
    assert "red hair" in p.unknown_words and "white sneakers" in p.unknown_words
    p = parse("man with a black backpack")
    assert explicit(p.text) == {M, ("backpack", True)}  # the backpack counts; its colour is reported
    assert p.unknown_words == ("black backpack",)


def test_typos_are_corrected_and_reported():
    p = parse("man with a backpak and grey trowsers")
    assert explicit(p.text) == {M, ("backpack", True), ("lower", "grey", True, None)}
    assert ("backpak", "backpack") in p.corrections and ("trowsers", "trousers") in p.corrections
    assert p.unknown_words == ()


def test_garments_imply_attributes_weakly():
    p = parse("man in a jacket and shorts")
    implied = {(c.target, c.positive): c.weight for c in p.constraints if c.implied}
    assert implied == {("coat_jacket", True): WEIGHTS["coat_jacket"] / 2, ("long_sleeves", True):
                       WEIGHTS["long_sleeves"] / 2, ("long_pants", False): WEIGHTS["long_pants"] / 2}


def test_jeans_imply_blue_unless_a_colour_is_given():
    blue = [c for c in parse("woman in jeans").constraints if c.kind == "colour"]
    assert len(blue) == 1 and blue[0].implied and blue[0].target == "lower" and dict(blue[0].colour.credits) == {
        "blue": 1.0}
    black = [c for c in parse("woman in black jeans").constraints if c.kind == "colour"]
    assert len(black) == 1 and not black[0].implied and dict(black[0].colour.credits) == {"black": 1.0}


def test_two_colours_of_one_garment_share_its_weight():
    cs = [c for c in parse("a red and blue jacket").constraints if c.kind == "colour"]
    assert [c.weight for c in cs] == [0.5, 0.5]


def test_dark_and_light_give_neighbour_credit():
    (navy,) = [c for c in parse("navy trousers").constraints if c.kind == "colour"]
    assert navy.colour.shade == "dark" and dict(navy.colour.credits)["black"] < 1
    (pale,) = [c for c in parse("pale blue shirt").constraints if c.kind == "colour"]
    assert pale.colour.shade == "light" and 0 < dict(pale.colour.credits)["white"] < 1


def test_nothing_understood():
    p = parse("xyzzy plugh")
    assert not p.understood and p.unknown_words == ("xyzzy", "plugh")
    assert p.describe() == "(nothing understood)"


@pytest.mark.parametrize("bad", ["", "   ", None, "x" * 501])
def test_bad_queries(bad):
    with pytest.raises(InputError):
        parse(bad)


def test_repeats_collapse():
    p = parse("a man, he has a bag, the man with the bag")
    assert sorted((c.target, c.positive) for c in p.constraints) == [("bag", True), ("male", True)]
