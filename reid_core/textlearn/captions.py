"""Sentences from a PETA person's labels, with the labels each sentence asserts.

A caption is a few *facts* ("long blonde hair", "a black and white jacket", "carrying a backpack"), each phrased
from a synonym table, in random order and sentence shapes for training. Every caption also records the labels it
requires (`required`), so training can tell which other images a partial description fits ("man with a backpack"
fits every man with a backpack, not only the person it was written from).

`describe_person(labels, style)` gives the fixed phrasings used for scoring; they are written separately from the
training templates (other sentence shapes), so a held-out score is not a test of template recall.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reid_core.textlearn.vocab import COLOURS, HAIR_COLOURS, colour_label

GENDER = {"male": ["man", "guy", "male", "gentleman", "boy"], "female": ["woman", "lady", "female", "girl"]}
AGE_WORDS = {"personalLess15": ["child", "kid", "young"], "personalLess30": ["young", "youthful", "twenty-something"],
             "personalLess45": ["adult", "thirty-something", "grown-up"],
             "personalLess60": ["middle-aged", "older", "mature"],
             "personalLarger60": ["elderly", "old", "senior"]}
COLOUR_WORDS = {c: [c] for c in COLOURS}
COLOUR_WORDS["grey"] = ["grey", "gray"]
HAIR_COLOUR_WORDS = {"black": ["black", "dark"], "brown": ["brown", "brunette"], "grey": ["grey", "gray"],
                     "white": ["white", "silver"], "yellow": ["blonde", "blond", "yellow", "fair"]}
UPPER_GARMENTS = {"upperBodyJacket": ["jacket", "coat"], "upperBodyTshirt": ["t-shirt", "tee", "tshirt"],
                  "upperBodySuit": ["suit jacket", "blazer", "suit"], "upperBodySweater": ["sweater", "jumper"],
                  None: ["top", "shirt", "upper garment"]}
LOWER_GARMENTS = {"lowerBodyJeans": ["jeans", "denims"], "lowerBodyTrousers": ["trousers", "pants", "slacks"],
                  "lowerBodyShorts": ["shorts"], "lowerBodyShortSkirt": ["short skirt", "skirt", "miniskirt"],
                  "lowerBodyLongSkirt": ["long skirt", "skirt", "maxi skirt"],
                  "lowerBodyCapri": ["capri pants", "cropped trousers"],
                  "lowerBodyHotPants": ["hot pants", "very short shorts"], "lowerBodySuits": ["suit trousers"],
                  None: ["trousers", "bottoms", "pants"]}
FOOTWEAR = {"footwearSneakers": ["sneakers", "trainers", "sports shoes"], "footwearSandals": ["sandals"],
            "footwearBoots": ["boots"], "footwearLeatherShoes": ["leather shoes", "formal shoes"],
            "footwearStocking": ["stockings", "tights"], "footwearShoes": ["shoes"], None: ["shoes"]}
SLEEVES = {"upperBodyShortSleeve": ["short-sleeved", "short sleeve"], "upperBodyNoSleeve": ["sleeveless"],
           "upperBodyLongSleeve": ["long-sleeved", "long sleeve"]}
PATTERNS = {"upperBodyThinStripes": ["striped", "pinstriped"], "upperBodyThickStripes": ["striped", "stripy"],
            "upperBodyPlaid": ["plaid", "checked"], "upperBodyLogo": ["logo", "printed"]}
CARRY = {"carryingBackpack": ["a backpack", "a rucksack"],
         "carryingMessengerBag": ["a shoulder bag", "a messenger bag", "a bag", "a handbag"],
         "carryingPlasticBags": ["a plastic bag", "shopping bags", "a carrier bag"],
         "carryingOther": ["something", "an item", "a bag"], "carryingFolder": ["a folder", "documents", "a file"],
         "carryingSuitcase": ["a suitcase", "a briefcase"], "carryingLuggageCase": ["luggage", "a trolley case"],
         "carryingBabyBuggy": ["a pram", "a stroller", "a baby buggy"]}
NOTHING = ["carrying nothing", "empty-handed", "with no bag", "without a bag"]
ACCESSORIES = {"accessoryHat": ["a hat", "a cap"], "accessorySunglasses": ["sunglasses", "shades"],
               "accessoryHairBand": ["a hair band", "a headband"], "accessoryMuffler": ["a scarf", "a muffler"],
               "accessoryHeadphone": ["headphones"]}


@dataclass(frozen=True)
class Caption:
    text: str
    required: frozenset[str]


class _Pick:
    """Synonym choice: random for training, the first (canonical) word for scoring."""

    def __init__(self, rng: np.random.Generator | None):
        self.rng = rng

    def __call__(self, options):
        return options[0] if self.rng is None else options[int(self.rng.integers(len(options)))]

    def keep(self, p: float) -> bool:
        return True if self.rng is None else bool(self.rng.random() < p)


def _colours(labels, region: str) -> list[str]:
    names = HAIR_COLOURS if region == "hair" else COLOURS
    return [c for c in names if colour_label(region, c) in labels]


def _colour_phrase(cols: list[str], pick: _Pick, words=COLOUR_WORDS) -> str:
    parts = [pick(words[c]) for c in cols[:2]]
    return " and ".join(parts)


def _garment(labels, table, pick: _Pick) -> tuple[str, set[str]]:
    for label, words in table.items():
        if label is not None and label in labels:
            if pick.keep(0.85):
                return pick(words), {label}
            break
    return pick(table[None]), set()


# ---- facts: (noun phrase, required labels) ----
def _who(labels, pick: _Pick) -> tuple[str, set[str]]:
    req: set[str] = set()
    gender = "male" if "personalMale" in labels else "female" if "personalFemale" in labels else None
    noun = "person"
    if gender and pick.keep(0.9):
        noun = pick(GENDER[gender])
        req.add("personalMale" if gender == "male" else "personalFemale")
    age = next((a for a in AGE_WORDS if a in labels), None)
    if age and pick.keep(0.35 if pick.rng is not None else 1.0):
        adj = pick(AGE_WORDS[age])
        req.add(age)
        if adj in ("child", "kid"):
            return (adj if noun == "person" else f"{'young ' if pick.rng is None else ''}{noun}".strip()), req
        return f"{adj} {noun}", req
    return noun, req


def _hair(labels, pick: _Pick) -> tuple[str, set[str]] | None:
    if "hairBald" in labels:
        return "a bald head", {"hairBald"}
    req, words = set(), []
    for label, word in (("hairLong", "long"), ("hairShort", "short")):
        if label in labels and pick.keep(0.9):
            words.append(word)
            req.add(label)
    cols = _colours(labels, "hair")
    if cols and pick.keep(0.7):
        words.append(pick(HAIR_COLOUR_WORDS[cols[0]]))
        req.add(colour_label("hair", cols[0]))
    return (" ".join(words) + " hair", req) if words else None


def _upper(labels, pick: _Pick) -> tuple[str, set[str]] | None:
    req: set[str] = set()
    cols = _colours(labels, "upper")
    words = []
    if cols and pick.keep(0.95):
        words.append(_colour_phrase(cols, pick))
        req |= {colour_label("upper", c) for c in cols[:2]}
    for table in (PATTERNS, SLEEVES):
        hit = next((lab for lab in table if lab in labels), None)
        if hit and pick.keep(0.5 if table is SLEEVES else 0.7):
            words.append(pick(table[hit]))
            req.add(hit)
    garment, g_req = _garment(labels, UPPER_GARMENTS, pick)
    if not words and not g_req:
        return None
    return " ".join(words + [garment]), req | g_req


def _lower(labels, pick: _Pick) -> tuple[str, set[str]] | None:
    req: set[str] = set()
    cols = _colours(labels, "lower")
    words = []
    if cols and pick.keep(0.95):
        words.append(_colour_phrase(cols, pick))
        req |= {colour_label("lower", c) for c in cols[:2]}
    garment, g_req = _garment(labels, LOWER_GARMENTS, pick)
    if not words and not g_req:
        return None
    return " ".join(words + [garment]), req | g_req


def _shoes(labels, pick: _Pick) -> tuple[str, set[str]] | None:
    req: set[str] = set()
    cols = _colours(labels, "footwear")
    words = []
    if cols and pick.keep(0.9):
        words.append(pick(COLOUR_WORDS[cols[0]]))
        req.add(colour_label("footwear", cols[0]))
    garment, g_req = _garment(labels, FOOTWEAR, pick)
    if not words and not g_req:
        return None
    return " ".join(words + [garment]), req | g_req


def _carry(labels, pick: _Pick) -> tuple[list[str], set[str], bool]:
    """(items, required, nothing): what is carried, or nothing."""
    items = [(lab, pick(words)) for lab, words in CARRY.items() if lab in labels]
    if not items:
        return [], ({"carryingNothing"} if "carryingNothing" in labels else set()), "carryingNothing" in labels
    return [w for _, w in items], {lab for lab, _ in items}, False


def _accessories(labels, pick: _Pick) -> tuple[list[str], set[str]]:
    items = [(lab, pick(words)) for lab, words in ACCESSORIES.items() if lab in labels]
    return [w for _, w in items], {lab for lab, _ in items}


def _a(phrase: str) -> str:
    if phrase.endswith(("s", "jeans", "trousers", "pants", "shorts")) or phrase.startswith(("a ", "an ")):
        return phrase
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _join(items: list[str], pick: _Pick) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + pick([" and ", ", "]) + items[-1]


# ---- training captions -----------------------------------------------------------------------------------------
def random_caption(labels, rng: np.random.Generator) -> Caption:
    """One random description of a person with these labels, naming a random part of what is known."""
    pick = _Pick(rng)
    who, req = _who(labels, pick)
    clauses: list[str] = []
    hair = _hair(labels, pick) if pick.keep(0.6) else None
    clothes = [x for x in (_upper(labels, pick) if pick.keep(0.9) else None,
                           _lower(labels, pick) if pick.keep(0.85) else None,
                           _shoes(labels, pick) if pick.keep(0.4) else None) if x]
    carried, c_req, nothing = _carry(labels, pick)
    carry = pick.keep(0.7)
    acc, a_req = _accessories(labels, pick)
    acc_keep = pick.keep(0.6)
    terse = pick.keep(0.25)
    if terse:  # "man, black jacket, blue jeans, backpack"
        parts = [who] + ([hair[0]] if hair else []) + [c[0] for c in clothes]
        if carry:
            parts += [c.removeprefix("a ") for c in carried] or ([pick(["no bag", "nothing carried"])] if nothing
                                                                   else [])
        if acc_keep:
            parts += [a.removeprefix("a ") for a in acc]
        order = [parts[0]] + list(rng.permutation(parts[1:])) if pick.keep(0.7) else list(rng.permutation(parts))
        text = pick([", ", ", ", " "]).join(order)
    else:
        if hair:
            clauses.append(pick(["with ", "who has ", "having "]) + hair[0])
        if clothes:
            body = _join([_a(c[0]) for c in clothes], pick)
            clauses.append(pick(["wearing ", "in ", "dressed in ", "who wears ", "with "]) + body)
        if carry and carried:
            clauses.append(pick(["carrying ", "holding ", "with ", "who carries "]) + _join(carried, pick))
        elif carry and nothing:
            clauses.append(pick(NOTHING))
        if acc_keep and acc:
            clauses.append(pick(["with ", "wearing ", "who has "]) + _join(acc, pick))
        clauses = list(rng.permutation(clauses)) if len(clauses) > 1 else clauses
        lead = pick(["a ", "the ", "", "an image of a ", "find a ", "looking for a ", "there is a "])
        text = lead + who + ((" " if not clauses else pick([" ", ", ", " "])) + _join(clauses, pick)
                             if clauses else "")
        text = text.replace(" a a", " an a").replace(" a e", " an e").replace(" a o", " an o")
        if pick.keep(0.3):
            text = text.capitalize() + "."
    for x in [hair] + clothes:
        if x:
            req |= x[1]
    if carry:
        req |= c_req
    if acc_keep:
        req |= a_req
    return Caption(" ".join(text.split()), frozenset(req))


# ---- scoring phrasings -----------------------------------------------------------------------------------------
EVAL_STYLES = ("sentence", "terse", "carry-first")


def describe_person(labels, style: str = "sentence") -> Caption:
    """A full description in one of EVAL_STYLES: every fact the labels give, canonical words."""
    pick = _Pick(None)
    who, req = _who(labels, pick)
    hair = _hair(labels, pick)
    upper, lower, shoes = _upper(labels, pick), _lower(labels, pick), _shoes(labels, pick)
    carried, c_req, nothing = _carry(labels, pick)
    acc, a_req = _accessories(labels, pick)
    for x in (hair, upper, lower, shoes):
        if x:
            req |= x[1]
    req |= c_req | a_req
    clothes = [x[0] for x in (upper, lower) if x]
    if style == "terse":
        parts = [who] + ([hair[0]] if hair else []) + clothes + ([shoes[0]] if shoes else []) \
            + (carried or (["no bag"] if nothing else [])) + [a.removeprefix("a ") for a in acc]
        text = ", ".join(p.removeprefix("a ") for p in parts)
    elif style == "carry-first":
        head = ("someone carrying " + " and ".join(carried)) if carried else ("someone with nothing in hand"
                                                                               if nothing else "someone")
        body = " and ".join(_a(c) for c in clothes)
        text = f"{head}{', dressed in ' + body if body else ''}" + (f", {shoes[0]} on the feet" if shoes else "") \
            + f"; {_a(who)}" + (f" with {hair[0]}" if hair else "") + (f", also {' and '.join(acc)}" if acc else "")
    else:
        text = _a(who).capitalize() + (f" with {hair[0]}" if hair else "")
        wear = [_a(c) for c in clothes] + ([shoes[0]] if shoes else [])
        if wear:
            text += ", wearing " + ", ".join(wear[:-1]) + (" and " if len(wear) > 1 else "") + wear[-1]
        if carried:
            text += ", carrying " + " and ".join(carried)
        elif nothing:
            text += ", carrying nothing"
        if acc:
            text += ", with " + " and ".join(acc)
        text += "."
    return Caption(" ".join(text.split()), frozenset(req))


def attribute_query(labels, rng: np.random.Generator, facts: int = 2) -> Caption:
    """A short query naming `facts` things about a person ("woman with a backpack"), canonical words: the template
    protocol, where every image whose labels include what is asked is a correct answer."""
    pick = _Pick(None)
    options = []
    who, wreq = _who(labels, pick)
    if wreq:
        options.append(("who", who.split()[-1], {lab for lab in wreq if lab in ("personalMale", "personalFemale")}))
    for name, fn in (("hair", _hair), ("upper", _upper), ("lower", _lower), ("shoes", _shoes)):
        x = fn(labels, pick)
        if x and x[1]:
            options.append((name, x[0], set(x[1])))
    carried, c_req, _ = _carry(labels, pick)
    for lab, word in zip(sorted(c_req), carried):
        options.append(("carry", "carrying " + word, {lab}))
    acc, a_req = _accessories(labels, pick)
    for lab, word in zip(sorted(a_req), acc):
        options.append(("acc", "with " + word, {lab}))
    chosen = [options[i] for i in sorted(rng.choice(len(options), size=min(facts, len(options)), replace=False))]
    noun = next((c[1] for c in chosen if c[0] == "who"), "person")
    rest = [c for c in chosen if c[0] != "who"]
    text = noun
    for kind, phrase, _ in rest:
        text += (" with " if kind == "hair" else " in " if kind in ("upper", "lower", "shoes") else " ") \
            + (_a(phrase) if kind in ("upper", "lower") else phrase)
    return Caption(text, frozenset().union(*[c[2] for c in chosen]))
