"""Free text -> constraints the attribute engine can score ("a man in a red top without a bag").

The parser is a small hand-written lexicon plus a few attachment rules, not a language model: it must run offline,
instantly, and say exactly which words it used and which it could not. Every constraint remembers the words it came
from so a result can be explained ("red top: 0.92").

Rules, in the order they apply:
  * words are lower-cased, hyphens split ("t-shirt", "dark-blue"), plurals and "-ish" colours reduced, and a word
    that is not in the lexicon but is one typo away from a word that is gets corrected (and the correction reported);
  * a colour attaches to the garment right after it ("red top", "red and white jacket"), else to a garment just
    before it ("a jacket in red", "trousers that are grey"); an unattached colour means "anywhere" ("dressed in
    red"), or the one region no other colour has claimed ("a man in black with blue jeans");
  * a negator ("no", "not", "without", "doesn't have") negates the next item and items joined to it by "or"/"nor"
    or, for bag/backpack/hat, by "and" ("without a hat and bag"); "with", "but", "wearing" end it;
  * colours of things the model cannot see (hair, shoes, bags) are reported as unknown rather than misattributed.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from reid_core.attributes import COLOURS
from reid_core.errors import InputError

MAX_QUERY_CHARS = 500

# ---- lexicon ------------------------------------------------------------------------------------------------------
MALE = {"man", "men", "male", "males", "guy", "guys", "boy", "boys", "gentleman", "gentlemen", "he", "his", "him",
        "mr", "dude", "lad", "bloke", "fellow", "gent", "masculine", "father", "dad", "husband", "son", "mister"}
FEMALE = {"woman", "women", "female", "females", "lady", "ladies", "girl", "girls", "she", "her", "hers", "mrs",
          "ms", "miss", "gal", "feminine", "mother", "mum", "mom", "wife", "daughter", "madam"}
PERSON = {"person", "people", "someone", "somebody", "pedestrian", "pedestrians", "individual", "adult", "human",
          "figure", "walker", "kid", "child", "teen", "teenager", "anyone", "anybody", "one", "subject", "suspect"}

# Palette credit of each colour word: main colour 1.0, neighbours that the same cloth often reads as get less.
COLOUR_WORDS: dict[str, dict[str, float]] = {
    "black": {"black": 1.0}, "white": {"white": 1.0}, "grey": {"grey": 1.0}, "gray": {"grey": 1.0},
    "silver": {"grey": 1.0, "white": 0.5}, "charcoal": {"grey": 1.0, "black": 0.7},
    "red": {"red": 1.0}, "crimson": {"red": 1.0}, "scarlet": {"red": 1.0}, "cherry": {"red": 1.0},
    "maroon": {"red": 1.0, "brown": 0.5, "purple": 0.3}, "burgundy": {"red": 1.0, "brown": 0.5, "purple": 0.3},
    "wine": {"red": 1.0, "purple": 0.5}, "orange": {"orange": 1.0, "brown": 0.3},
    "yellow": {"yellow": 1.0}, "gold": {"yellow": 1.0, "orange": 0.5}, "golden": {"yellow": 1.0, "orange": 0.5},
    "mustard": {"yellow": 1.0, "brown": 0.5}, "green": {"green": 1.0}, "olive": {"green": 0.8, "brown": 0.8},
    "khaki": {"green": 0.7, "brown": 0.8}, "lime": {"green": 1.0, "yellow": 0.5},
    "teal": {"blue": 1.0, "green": 1.0}, "turquoise": {"blue": 1.0, "green": 1.0}, "cyan": {"blue": 1.0, "green": 0.7},
    "aqua": {"blue": 1.0, "green": 0.7}, "blue": {"blue": 1.0}, "denim": {"blue": 1.0},
    "navy": {"blue": 1.0, "black": 0.4}, "purple": {"purple": 1.0}, "violet": {"purple": 1.0},
    "lilac": {"purple": 1.0, "pink": 0.5}, "lavender": {"purple": 1.0, "pink": 0.5},
    "mauve": {"purple": 1.0, "pink": 0.7},
    "magenta": {"pink": 1.0, "purple": 0.5}, "fuchsia": {"pink": 1.0, "purple": 0.5}, "pink": {"pink": 1.0},
    "rose": {"pink": 1.0, "red": 0.4}, "brown": {"brown": 1.0}, "chocolate": {"brown": 1.0},
    "beige": {"brown": 1.0, "white": 0.4, "orange": 0.3}, "tan": {"brown": 1.0, "orange": 0.4},
    "camel": {"brown": 1.0, "orange": 0.4}, "cream": {"white": 1.0, "yellow": 0.3}, "ivory": {"white": 1.0},
    "offwhite": {"white": 1.0, "grey": 0.5},
    "colourful": {"red": 0.8, "orange": 0.8, "yellow": 0.8, "green": 0.8, "blue": 0.5, "purple": 0.8, "pink": 0.8},
    "dark": {"black": 1.0, "grey": 0.4, "blue": 0.5, "brown": 0.5},  # "dark clothes" with no colour named
    "light": {"white": 1.0, "grey": 0.6},
}
COLOUR_ALIASES = {"colorful": "colourful", "colored": "coloured", "color": "colour", "colors": "colour",
                  "colours": "colour", "grey": "grey", "gray": "gray", "greyish": "grey", "grayish": "grey",
                  "reddish": "red", "bluish": "blue", "blueish": "blue", "greenish": "green", "yellowish": "yellow",
                  "pinkish": "pink", "purplish": "purple", "brownish": "brown", "orangey": "orange",
                  "orangish": "orange", "whitish": "white", "blackish": "black"}
for _w in COLOUR_WORDS:
    assert all(c in COLOURS for c in COLOUR_WORDS[_w]), _w
DARK_WORDS = {"dark", "deep", "navy"}  # "navy" is also a colour word; as a modifier ("navy blue") it only darkens
LIGHT_WORDS = {"light", "pale", "pastel", "faded", "baby", "sky", "powder", "bleached"}
NEUTRAL_MODIFIERS = {"bright", "vivid", "medium", "mid", "plain", "solid", "neon", "hot", "royal", "electric",
                     "washed", "deep"}

# Garments: region, and what wearing one implies about the model's attributes (weaker than an explicit word).
UPPER, LOWER, ANY, BOTH = "upper", "lower", "any", "both"
GARMENTS: dict[str, tuple[str, dict[str, bool]]] = {}
for _w in ("top", "shirt", "blouse", "tunic", "jersey", "upper", "torso", "chest", "bodice", "tee", "tshirt",
           "polo", "tank", "singlet", "vest", "sweater", "jumper", "pullover", "hoodie", "hoody", "sweatshirt",
           "cardigan", "fleece", "jacket", "coat", "parka", "anorak", "blazer", "overcoat", "raincoat", "trenchcoat",
           "windbreaker", "puffer", "gilet", "mac", "cagoule", "poncho", "shell"):
    GARMENTS[_w] = (UPPER, {})
for _w in ("jacket", "coat", "parka", "anorak", "blazer", "overcoat", "raincoat", "trenchcoat", "windbreaker",
           "puffer", "cagoule", "mac"):
    GARMENTS[_w] = (UPPER, {"coat_jacket": True, "long_sleeves": True})
for _w in ("sweater", "jumper", "pullover", "hoodie", "hoody", "sweatshirt", "cardigan", "fleece"):
    GARMENTS[_w] = (UPPER, {"long_sleeves": True})
for _w in ("tshirt", "tee", "tank", "singlet", "polo"):
    GARMENTS[_w] = (UPPER, {"long_sleeves": False})
for _w in ("trousers", "pants", "jeans", "slacks", "chinos", "joggers", "sweatpants", "trackpants", "leggings",
           "tights", "denims", "cargos", "corduroys", "cords", "khakis"):
    GARMENTS[_w] = (LOWER, {"long_pants": True})
for _w in ("shorts", "skirt", "miniskirt"):
    GARMENTS[_w] = (LOWER, {"long_pants": False})
for _w in ("bottoms", "legs", "lower", "bottom"):
    GARMENTS[_w] = (LOWER, {})
for _w in ("dress", "gown", "overalls", "jumpsuit", "boilersuit", "tracksuit", "suit", "uniform"):
    GARMENTS[_w] = (BOTH, {})
for _w in ("clothes", "clothing", "outfit", "attire", "garments", "gear", "wear", "everything"):
    GARMENTS[_w] = (ANY, {})
# A garment that usually has a colour of its own: "jeans" alone means blue jeans (credit below an explicit colour).
IMPLIED_COLOUR = {"jeans": {"blue": 1.0}, "denims": {"blue": 1.0}}

ACCESSORIES = {
    "bag": "bag", "handbag": "bag", "purse": "bag", "tote": "bag", "satchel": "bag", "briefcase": "bag",
    "shopping": None, "suitcase": "bag", "luggage": "bag", "holdall": "bag", "duffel": "bag", "clutch": "bag",
    "backpack": "backpack", "rucksack": "backpack", "knapsack": "backpack", "daypack": "backpack",
    "schoolbag": "backpack", "hat": "hat", "cap": "hat", "beanie": "hat", "helmet": "hat", "beret": "hat",
    "hood": "hat", "bonnet": "hat", "fedora": "hat", "headwear": "hat", "headscarf": "hat", "turban": "hat",
}
NEGATED_ACCESSORY = {"hatless": "hat", "bareheaded": "hat", "bagless": "bag", "emptyhanded": "bag"}
HAIR_LONG = {"ponytail", "ponytails", "braid", "braids", "pigtails", "bun", "longhaired"}
HAIR_SHORT = {"bald", "shaved", "buzzcut", "crewcut", "shorthaired", "balding"}
HAIR_COLOURS = {"blonde", "blond", "brunette", "ginger", "redhead", "redheaded", "auburn", "grey-haired",
                "grayhaired", "greyhaired", "fair", "dark-haired", "darkhaired"}

NEGATORS = {"no", "not", "without", "never", "none", "neither", "nor", "isnt", "doesnt", "dont", "arent", "wasnt",
            "lacking", "minus", "sans", "nothing", "hasnt", "havent", "cant", "aint", "wo", "non"}
POSITIVE_MARKERS = {"with", "wearing", "wears", "wore", "worn", "carrying", "carries", "carried", "holding",
                    "holds", "has", "having", "have", "had", "but", "plus", "dressed", "sporting", "wearin", "w"}
CARRY_VERBS = {"carrying", "carries", "carried", "holding", "holds", "with", "has", "having"}
CLAUSE_BREAKS = {",", ";", ".", "!", "?", "(", ")"}
FILLERS = {
    "a", "an", "the", "and", "of", "who", "that", "which", "is", "are", "was", "were", "be", "being", "been", "some",
    "any", "in", "on", "at", "to", "for", "from", "by", "as", "like", "looking", "looks", "look", "walking", "walks",
    "walk", "standing", "stands", "running", "runs", "going", "goes", "crossing", "seen", "appears", "appearing",
    "there", "here", "this", "these", "those", "it", "its", "their", "they", "them", "i", "me", "my", "we", "you",
    "your", "very", "quite", "rather", "really", "maybe", "probably", "possibly", "perhaps", "mostly", "mainly",
    "also", "too", "just", "only", "kind", "sort", "type", "pair", "pairs", "set", "something", "thing",
    "one", "ones", "colour", "coloured", "shade", "tone", "toned", "big", "small", "large", "little", "long",
    "short", "sleeved", "sleeves", "sleeve", "sleeveless", "hair", "haired", "leather", "wool", "woollen",
    "woolen", "woolly", "knitted", "knit", "cotton", "puffy", "padded", "quilted", "striped", "stripy", "checked",
    "plaid", "hooded", "zip", "zipped", "button", "buttoned", "up", "down", "over", "under", "into", "out", "off",
    "loose", "tight", "baggy", "skinny", "slim", "fitted", "casual", "formal", "smart", "old", "young", "elderly",
    "older", "younger", "tall", "heavy", "thin", "new", "nice", "dressed", "clad", "all", "head", "toe", "entirely",
    "completely", "fully", "totally", "whole", "both", "either", "each", "same", "matching", "similar", "near",
    "around", "about", "approximately", "find", "show", "search", "please", "get", "where", "what", "whose",
    "seems", "seem", "wearing", "should", "would", "could", "might", "must", "can", "will", "s", "d", "ve", "ll",
    "re", "m", "t", "shoulder", "hand", "back", "school", "messenger", "sports", "gym", "baseball", "cargo",
    "track", "sweat", "trench", "rain", "wind", "body", "half", "part", "piece", "item", "colored", "anything",
}
# Things people mention that the attribute model cannot see; their colour words must not leak onto clothes.
UNSEEN_ITEMS = {"shoes", "shoe", "sneakers", "sneaker", "trainers", "trainer", "boots", "boot", "sandals",
                "heels", "socks", "glasses", "sunglasses", "spectacles", "scarf", "gloves", "glove", "umbrella",
                "phone", "mask", "beard", "moustache", "mustache", "tie", "belt", "watch", "necklace", "earrings",
                "dog", "bike", "bicycle", "stroller", "pram", "paper", "papers", "sheet", "folder", "book", "cup",
                "bottle", "headphones", "lanyard", "badge", "shoelaces", "collar", "fur", "trim", "logo", "print",
                "pattern", "stripes", "skin", "face", "eyes"}
PHRASES = [  # multi-word units, longest first after sorting below
    (("t", "shirt"), "tshirt"), (("tee", "shirt"), "tshirt"), (("tank", "top"), "tank"), (("polo", "shirt"), "polo"),
    (("hand", "bag"), "handbag"), (("back", "pack"), "backpack"), (("school", "bag"), "schoolbag"),
    (("shoulder", "bag"), "bag"), (("messenger", "bag"), "bag"), (("tote", "bag"), "bag"),
    (("shopping", "bag"), "bag"), (("sports", "bag"), "bag"), (("gym", "bag"), "bag"), (("duffel", "bag"), "bag"),
    (("baseball", "cap"), "cap"), (("off", "white"), "offwhite"), (("track", "suit"), "tracksuit"),
    (("track", "pants"), "trackpants"), (("sweat", "pants"), "sweatpants"), (("sweat", "shirt"), "sweatshirt"),
    (("rain", "coat"), "raincoat"), (("trench", "coat"), "trenchcoat"), (("over", "coat"), "overcoat"),
    (("wind", "breaker"), "windbreaker"), (("rain", "jacket"), "raincoat"), (("puffer", "jacket"), "puffer"),
    (("down", "jacket"), "puffer"), (("mini", "skirt"), "miniskirt"), (("empty", "handed"), "emptyhanded"),
    (("bare", "headed"), "bareheaded"), (("pony", "tail"), "ponytail"), (("upper", "body"), "upper"),
    (("lower", "body"), "lower"), (("head", "to", "toe"), "headtotoe"), (("from", "head", "to", "toe"), "headtotoe"),
    (("all", "in"), "allover"), (("all", "over"), "allover"), (("w", "/", "o"), "without"),
    (("with", "out"), "without"), (("does", "not"), "not"), (("do", "not"), "not"), (("is", "not"), "not"),
    (("has", "no"), "no"), (("have", "no"), "no"), (("with", "no"), "no"), (("not", "wearing"), "not"),
    (("not", "carrying"), "not"), (("not", "holding"), "not"), (("free", "of"), "without"),
]
PHRASES.sort(key=lambda p: -len(p[0]))
WHOLE = {"allover", "headtotoe", "entirely", "completely", "totally", "fully"}

VOCABULARY = (MALE | FEMALE | PERSON | set(COLOUR_WORDS) | set(COLOUR_ALIASES) | DARK_WORDS | LIGHT_WORDS
              | NEUTRAL_MODIFIERS | set(GARMENTS) | set(ACCESSORIES) | set(NEGATED_ACCESSORY) | HAIR_LONG
              | HAIR_SHORT | NEGATORS | POSITIVE_MARKERS | FILLERS | UNSEEN_ITEMS | WHOLE | {"or", "nor"})
# Typo correction only towards content words: correcting "wit" to "with" would be a guess that changes nothing.
_CONTENT = sorted(MALE | FEMALE | set(COLOUR_WORDS) | set(GARMENTS) | set(ACCESSORIES) | HAIR_LONG | HAIR_SHORT
                  | {"without", "wearing", "carrying"})

# Relative importance of each kind of constraint in the score (see docs/text_search.md). Colours are measured from
# pixels and weigh 1; a model attribute weighs its F1 on Intel's model card for crossroad-0230 (is_male 0.91,
# has_bag 0.66, has_backpack 0.77, has_hat 0.64, has_longsleeves 0.21, has_longpants 0.83, has_longhair 0.83;
# coat_jacket has no published F1 and gets the lowest weight), so what the model is bad at counts little.
WEIGHTS = {"colour": 1.0, "male": 0.91, "bag": 0.66, "backpack": 0.77, "hat": 0.64, "long_hair": 0.83,
           "long_sleeves": 0.21, "long_pants": 0.83, "coat_jacket": 0.2}
IMPLIED_FACTOR = 0.5  # constraints implied by a garment word count half as much as stated ones


# ---- results ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColourSpec:
    """A colour as asked for: palette credits ({"blue": 1.0, "black": 0.4} for "navy") and an optional shade."""

    credits: tuple[tuple[str, float], ...]
    shade: str | None = None  # "dark" | "light" | None


@dataclass(frozen=True)
class Constraint:
    """One thing the query asks for. kind "attribute": target is an ATTRIBUTES name; kind "colour": target is the
    region (upper, lower, any, both)."""

    kind: str
    target: str
    positive: bool
    colour: ColourSpec | None = None
    weight: float = 1.0
    text: str = ""  # the query words it came from
    implied: bool = False  # deduced from a garment ("jacket" -> coat) rather than said

    def describe(self) -> str:
        neg = "" if self.positive else "not "
        if self.kind == "colour":
            return f"{neg}{self.text or self.target} ({self.target})"
        if self.target == "male":
            return ("man" if self.positive else "woman") + ("" if self.text in ("", "man", "woman") else
                                                            f" ({self.text})")
        return f"{neg}{self.target.replace('_', ' ')}" + (" (implied)" if self.implied else "")


@dataclass(frozen=True)
class ParsedQuery:
    text: str
    constraints: tuple[Constraint, ...]
    unknown_words: tuple[str, ...]
    corrections: tuple[tuple[str, str], ...] = field(default=())  # (typed, understood as)

    @property
    def understood(self) -> bool:
        return bool(self.constraints)

    def describe(self) -> str:
        return "; ".join(c.describe() for c in self.constraints) or "(nothing understood)"


# ---- tokenising ---------------------------------------------------------------------------------------------------
@dataclass
class _Tok:
    word: str  # normalised
    raw: str  # as typed (for unknown-word reports)


def _normalise(word: str) -> str:
    if word in COLOUR_ALIASES:
        return COLOUR_ALIASES[word]
    if word in VOCABULARY:
        return word
    if len(word) > 3 and word.endswith("es") and word[:-2] in VOCABULARY and word[:-2] not in FILLERS:
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and word[:-1] in VOCABULARY and word[:-1] not in FILLERS:
        return word[:-1]
    if word.endswith("ish") and word[:-3] in COLOUR_WORDS:
        return word[:-3]
    return word


def tokenise(text: str) -> tuple[list[_Tok], list[tuple[str, str]]]:
    """Lower-cased words with phrases joined; returns (tokens, typo corrections)."""
    text = text.lower().replace("’", "'").replace("colour-", "colour ").replace("color-", "color ")
    text = re.sub(r"(\w)n't\b", r"\1nt", text)  # doesn't -> doesnt, isn't -> isnt
    text = re.sub(r"\bw/o\b", " without ", text)
    text = re.sub(r"\bw/", " with ", text)
    text = re.sub(r"'s\b", "", text)  # the man's bag -> the man bag
    raw_words = re.findall(r"[a-z0-9]+|[,;.!?()/]", text)
    words = [_normalise(w) for w in raw_words]
    corrections = []
    for i, w in enumerate(words):
        if w not in VOCABULARY and w.isalpha() and len(w) >= 4:
            match = difflib.get_close_matches(w, _CONTENT, n=1, cutoff=0.8)
            if match:
                corrections.append((raw_words[i], match[0]))
                words[i] = match[0]
    out: list[_Tok] = []
    i = 0
    while i < len(words):
        for seq, joined in PHRASES:
            if tuple(words[i:i + len(seq)]) == seq:
                out.append(_Tok(joined, " ".join(raw_words[i:i + len(seq)])))
                i += len(seq)
                break
        else:
            out.append(_Tok(words[i], raw_words[i]))
            i += 1
    return out, corrections


# ---- parsing ------------------------------------------------------------------------------------------------------
@dataclass
class _Colour:
    pos: int
    spec: ColourSpec
    text: str
    region: str | None = None
    negated: bool = False
    consumed: bool = False  # belongs to something we cannot see (hair, shoes, a bag)
    garment: int | None = None  # token index of the garment it describes



# Words allowed between a colour and the garment after it ("red and white striped top").
_BRIDGE_FORWARD = {"and", "or", "/", "striped", "stripy", "checked", "plaid", "leather", "wool", "woollen",
                   "woolen", "woolly", "knitted", "knit", "cotton", "puffy", "padded", "quilted", "hooded",
                   "long", "short", "sleeved", "baggy", "skinny", "loose", "tight", "slim", "fitted", "zip",
                   "casual", "formal", "smart", "big", "small", "large", "little", "old", "new", "denim",
                   "coloured", "colour"}
# Words allowed between a garment and a colour after it ("a jacket in red", "trousers that are grey").
_BRIDGE_BACKWARD = {"in", "is", "are", "was", "that", "which", "of", "a", "the", "coloured", "colour", "all",
                    "mostly", "mainly", "very", "quite", "rather", "some", "shade", "kind", "sort", "bright"}
_MODIFIERS = DARK_WORDS | LIGHT_WORDS | NEUTRAL_MODIFIERS
_ITEMS = set(ACCESSORIES) | set(GARMENTS) | MALE | FEMALE | HAIR_LONG | HAIR_SHORT | set(NEGATED_ACCESSORY)


def _negation_scopes(words: list[str]) -> list[bool]:
    """neg[i]: token i is inside the scope of a negator (see the module docstring for the rules)."""
    n = len(words)
    neg = [False] * n
    i = 0
    while i < n:
        if words[i] not in NEGATORS or words[i] == "nor":
            i += 1
            continue
        j, items, last_acc = i + 1, 0, False
        while j < n:
            w = words[j]
            nxt = next((x for x in words[j + 1:] if x not in ("a", "an", "the", "any")), None)
            if w in CLAUSE_BREAKS:
                if items and last_acc and nxt in ACCESSORIES:  # "no hat, bag or backpack"
                    j += 1
                    continue
                break
            if items and w in POSITIVE_MARKERS:
                break
            if items and w == "and" and not (last_acc and nxt in ACCESSORIES):
                break
            if w in _ITEMS:
                items += 1
                last_acc = w in ACCESSORIES
            elif w in COLOUR_WORDS and not (j + 1 < n and (words[j + 1] in COLOUR_WORDS or words[j + 1] in GARMENTS
                                                           or words[j + 1] in _BRIDGE_FORWARD)):
                items += 1
                last_acc = False
            neg[j] = True
            j += 1
        i = j
    return neg


def _colours(toks: list[_Tok], words: list[str], neg: list[bool], used: list[bool]) -> list[_Colour]:
    """Find colour phrases ("navy blue", "light grey", "red") and decide which region each describes."""
    n = len(words)
    found: list[_Colour] = []
    i = 0
    while i < n:
        start, shade = i, None
        # Modifiers only count when a colour follows: "dark blue" yes, "dark jacket" makes "dark" the colour.
        while i + 1 < n and words[i] in _MODIFIERS and (words[i + 1] in COLOUR_WORDS or words[i + 1] in _MODIFIERS):
            shade = "dark" if words[i] in DARK_WORDS else "light" if words[i] in LIGHT_WORDS else shade
            i += 1
        if words[i] not in COLOUR_WORDS:
            i = start + 1
            continue
        cw = words[i]
        credits = dict(COLOUR_WORDS[cw])
        if cw in ("navy", "dark", "light") and shade is None:
            shade = "light" if cw == "light" else "dark"
        # Dark cloth often reads as black in video, pale as white: partial credit, well below the colour itself.
        if shade == "dark" and cw not in ("black", "dark", "navy"):
            credits.setdefault("black", 0.3)
        if shade == "light" and cw not in ("white", "light"):
            credits.setdefault("white", 0.3)
        for k in range(start, i + 1):
            used[k] = True
        found.append(_Colour(i, ColourSpec(tuple(sorted(credits.items())), shade),
                             " ".join(t.raw for t in toks[start:i + 1]), negated=neg[i]))
        i += 1

    for c in found:
        j = c.pos + 1
        while j < n and (words[j] in COLOUR_WORDS or words[j] in _BRIDGE_FORWARD or words[j] in _MODIFIERS):
            if words[j] in ("and", "or", "/") and not (j + 1 < n and (words[j + 1] in COLOUR_WORDS
                                                                      or words[j + 1] in _MODIFIERS)):
                break
            j += 1
        if j < n and words[j] in GARMENTS:
            c.region, c.garment = GARMENTS[words[j]][0], j
            first = c.pos - len(c.text.split()) + 1  # where the colour phrase starts ("light blue")
            if c.region == ANY and first > 0 and words[first - 1] == "all":
                c.region = BOTH  # "an all-grey outfit"
            c.text += " " + toks[j].raw
            continue
        if j < n and (words[j] in ACCESSORIES or words[j] in UNSEEN_ITEMS or words[j] in ("hair", "haired")):
            c.consumed = True  # "red bag", "white shoes", "grey hair": not clothing the engine can measure
            c.text += " " + toks[j].raw
            if words[j] not in ACCESSORIES:  # the bag itself still counts; shoes and hair are reported once
                used[j] = True
            continue
        k = c.pos - 1
        while k >= 0 and (words[k] in _BRIDGE_BACKWARD or words[k] in COLOUR_WORDS or words[k] in _MODIFIERS
                          or words[k] in ("and", "or")):
            if words[k] == "all" and k == c.pos - 1 - sum(1 for x in words[k + 1:c.pos] if x in _MODIFIERS):
                c.region = BOTH  # "all black", "all in dark blue"
            if words[k] in ("and", "or") and not (k >= 1 and words[k - 1] in COLOUR_WORDS):
                break
            k -= 1
        if c.region is None and k >= 0 and words[k] in GARMENTS:
            c.region, c.garment = GARMENTS[words[k]][0], k
            c.text = toks[k].raw + " " + c.text
        elif c.region is None and k >= 0 and words[k] in WHOLE:
            c.region = BOTH
    return found


def parse(text: str) -> ParsedQuery:
    """Parse a description into constraints. Raises InputError for an empty or oversized query."""
    if text is None or not str(text).strip():
        raise InputError("the query is empty; describe the person, e.g. 'man in a red top with a backpack'")
    text = str(text).strip()
    if len(text) > MAX_QUERY_CHARS:
        raise InputError(f"the query is {len(text)} characters long; keep it under {MAX_QUERY_CHARS}")
    toks, corrections = tokenise(text)
    words = [t.word for t in toks]
    n = len(words)
    used = [False] * n
    neg = _negation_scopes(words)
    unknown: list[str] = []
    constraints: list[Constraint] = []

    def add(kind: str, target: str, positive: bool, said: str, colour: ColourSpec | None = None,
            implied: bool = False, share: float = 1.0) -> None:
        base = WEIGHTS["colour"] * share if kind == "colour" else WEIGHTS[target]
        constraints.append(Constraint(kind, target, positive, colour,
                                      base * (IMPLIED_FACTOR if implied else 1.0), said, implied))

    colours = _colours(toks, words, neg, used)
    claimed = {c.region for c in colours if c.region in (UPPER, LOWER) and not c.consumed}
    whole_query = any(w in WHOLE for w in words)
    coloured_garments = {c.garment for c in colours if c.garment is not None and not c.consumed}
    per_garment: dict[int | None, int] = {g: sum(1 for c in colours if c.garment == g and not c.consumed)
                                          for g in coloured_garments}
    for c in colours:
        if c.consumed:
            unknown.append(c.text)
            continue
        if c.region is None:
            # "dressed in red" could be either half; "a man in black with blue jeans" means the other half
            c.region = BOTH if whole_query else (LOWER if claimed == {UPPER} else UPPER if claimed == {LOWER}
                                                 else ANY)
        # "a blue and white shirt" is one garment: its colours share one garment's weight
        add("colour", c.region, not c.negated, c.text, c.spec, share=1.0 / per_garment.get(c.garment, 1))

    for k, w in enumerate(words):
        if used[k] or (w in NEGATORS and w != "nothing"):
            continue
        positive = not neg[k]
        raw = toks[k].raw
        if w in MALE or w in FEMALE:
            add("attribute", "male", (w in MALE) == positive, raw)
        elif w in GARMENTS:
            implies = GARMENTS[w][1]
            if positive:
                for attr, value in implies.items():
                    add("attribute", attr, value, raw, implied=True)
                if w in IMPLIED_COLOUR and k not in coloured_garments:
                    add("colour", LOWER, True, raw, ColourSpec(tuple(IMPLIED_COLOUR[w].items())), implied=True)
            elif "coat_jacket" in implies and k not in coloured_garments:
                add("attribute", "coat_jacket", False, raw)  # "without a jacket" (but "not a red jacket" is colour)
        elif w in ACCESSORIES:
            accessory = ACCESSORIES[w]
            if accessory:
                add("attribute", accessory, positive, raw)
        elif w in NEGATED_ACCESSORY:
            add("attribute", NEGATED_ACCESSORY[w], not positive, raw)
        elif w in HAIR_LONG or w in HAIR_SHORT:
            add("attribute", "long_hair", (w in HAIR_LONG) == positive, raw)
        elif w in ("hair", "haired") and k > 0 and words[k - 1] in ("long", "short"):
            add("attribute", "long_hair", (words[k - 1] == "long") == positive, f"{toks[k - 1].raw} {raw}")
        elif w in ("sleeves", "sleeve", "sleeved") and k > 0 and words[k - 1] in ("long", "short"):
            add("attribute", "long_sleeves", (words[k - 1] == "long") == positive, f"{toks[k - 1].raw} {raw}")
        elif w == "sleeveless":
            add("attribute", "long_sleeves", not positive, raw)
        elif (w == "anything" and not positive) or (w == "nothing" and k > 0 and words[k - 1] in CARRY_VERBS):
            add("attribute", "bag", False, raw)  # "not carrying anything", "carrying nothing"
            add("attribute", "backpack", False, raw)
        elif w in HAIR_COLOURS or w in UNSEEN_ITEMS:
            unknown.append(raw)
        elif w not in VOCABULARY and w not in CLAUSE_BREAKS:
            unknown.append(raw)

    # Repeats ("a man ... he") keep the first; an explicit word beats what a garment implied, and an implied colour
    # ("jeans" -> blue) yields to any colour stated for the lower body.
    explicit = {(c.kind, c.target) for c in constraints if not c.implied}
    stated_lower = any(c.kind == "colour" and c.target in (LOWER, BOTH) and not c.implied for c in constraints)
    seen, unique = set(), []
    for con in constraints:
        key = (con.kind, con.target, con.positive, con.colour)
        if key in seen or (con.implied and con.kind == "attribute" and (con.kind, con.target) in explicit) \
                or (con.implied and con.kind == "colour" and stated_lower):
            continue
        seen.add(key)
        unique.append(con)
    return ParsedQuery(text, tuple(unique), tuple(dict.fromkeys(unknown)), tuple(corrections))


def describe_constraints(parsed: ParsedQuery) -> list[str]:
    return [c.describe() for c in parsed.constraints]


# ---- PETA heads (the learned engine) ------------------------------------------------------------------------------
# The learned engine predicts PETA's labels (reid_core.textlearn.vocab) from stored features, so it can use words the
# crossroad model cannot see: hair colour, footwear, skirts and shorts, age, sunglasses, kinds of bag. parse_heads
# starts from parse() (gender, clothing colours, bag/backpack/hat, negation) and maps the rest itself.
@dataclass(frozen=True)
class HeadConstraint:
    """Agreement = max over targets of credit x p(label); 1 - that when negated."""

    targets: tuple[tuple[str, float], ...]  # (PETA label, credit)
    positive: bool
    text: str
    implied: bool = False
    share: float = 1.0  # "all black" splits one stated colour over two regions

    def describe(self) -> str:
        labels = "|".join(t for t, _ in self.targets)
        return f"{self.text} [{'' if self.positive else 'not '}{labels}]" + (" (implied)" if self.implied else "")


@dataclass(frozen=True)
class HeadQuery:
    text: str
    constraints: tuple[HeadConstraint, ...]
    unknown_words: tuple[str, ...]

    @property
    def understood(self) -> bool:
        return bool(self.constraints)

    def describe(self) -> str:
        return "; ".join(c.describe() for c in self.constraints) or "(nothing understood)"


_PETA_BAGS = (("carryingMessengerBag", 1.0), ("carryingPlasticBags", 1.0), ("carryingSuitcase", 1.0),
              ("carryingLuggageCase", 1.0), ("carryingOther", 0.8))
_ATTRIBUTE_HEADS = {"male": (("personalMale", 1.0),), "bag": _PETA_BAGS, "backpack": (("carryingBackpack", 1.0),),
                    "hat": (("accessoryHat", 1.0),), "long_hair": (("hairLong", 1.0),),
                    "long_sleeves": (("upperBodyLongSleeve", 1.0),), "coat_jacket": (("upperBodyJacket", 1.0),)}
# Words the attribute engine ignores or only half uses, and the PETA labels they mean.
HEAD_WORDS: dict[str, tuple[tuple[str, float], ...]] = {
    "skirt": (("lowerBodyShortSkirt", 1.0), ("lowerBodyLongSkirt", 1.0)),
    "miniskirt": (("lowerBodyShortSkirt", 1.0),), "dress": (("lowerBodyLongSkirt", 1.0), ("lowerBodyShortSkirt", 0.8)),
    "shorts": (("lowerBodyShorts", 1.0), ("lowerBodyHotPants", 1.0)), "jeans": (("lowerBodyJeans", 1.0),),
    "denims": (("lowerBodyJeans", 1.0),),
    "trousers": (("lowerBodyTrousers", 1.0), ("lowerBodyJeans", 0.7), ("lowerBodySuits", 0.7)),
    "pants": (("lowerBodyTrousers", 1.0), ("lowerBodyJeans", 0.7), ("lowerBodySuits", 0.7)),
    "slacks": (("lowerBodyTrousers", 1.0), ("lowerBodySuits", 0.7)), "capri": (("lowerBodyCapri", 1.0),),
    "jacket": (("upperBodyJacket", 1.0),), "coat": (("upperBodyJacket", 1.0),), "parka": (("upperBodyJacket", 1.0),),
    "anorak": (("upperBodyJacket", 1.0),), "overcoat": (("upperBodyJacket", 1.0),),
    "raincoat": (("upperBodyJacket", 1.0),), "windbreaker": (("upperBodyJacket", 1.0),),
    "puffer": (("upperBodyJacket", 1.0),),
    "tshirt": (("upperBodyTshirt", 1.0),), "tee": (("upperBodyTshirt", 1.0),),
    "sweater": (("upperBodySweater", 1.0),), "jumper": (("upperBodySweater", 1.0),),
    "pullover": (("upperBodySweater", 1.0),), "cardigan": (("upperBodySweater", 1.0),),
    "hoodie": (("upperBodySweater", 0.8), ("upperBodyJacket", 0.6)),
    "suit": (("upperBodySuit", 1.0), ("lowerBodySuits", 0.8)), "blazer": (("upperBodySuit", 1.0),),
    "sneakers": (("footwearSneakers", 1.0),), "trainers": (("footwearSneakers", 1.0),),
    "sandals": (("footwearSandals", 1.0),), "boots": (("footwearBoots", 1.0),),
    "stockings": (("footwearStocking", 1.0),), "tights": (("footwearStocking", 1.0),),
    "heels": (("footwearLeatherShoes", 0.7), ("footwearStocking", 0.5)),
    "blonde": (("hairYellow", 1.0),), "blond": (("hairYellow", 1.0),), "fair": (("hairYellow", 0.8),),
    "brunette": (("hairBrown", 1.0),), "greyhaired": (("hairGrey", 1.0), ("hairWhite", 0.8)),
    "grayhaired": (("hairGrey", 1.0), ("hairWhite", 0.8)), "bald": (("hairBald", 1.0),),
    "balding": (("hairBald", 1.0),), "shaved": (("hairBald", 0.7), ("hairShort", 0.7)),
    "ponytail": (("hairLong", 1.0),), "braid": (("hairLong", 1.0),), "longhaired": (("hairLong", 1.0),),
    "shorthaired": (("hairShort", 1.0),), "buzzcut": (("hairShort", 1.0),),
    "sunglasses": (("accessorySunglasses", 1.0),), "shades": (("accessorySunglasses", 1.0),),
    "glasses": (("accessorySunglasses", 0.5),), "scarf": (("accessoryMuffler", 1.0),),
    "muffler": (("accessoryMuffler", 1.0),), "headphones": (("accessoryHeadphone", 1.0),),
    "headband": (("accessoryHairBand", 1.0),), "hairband": (("accessoryHairBand", 1.0),),
    "folder": (("carryingFolder", 1.0),), "documents": (("carryingFolder", 1.0),),
    "suitcase": (("carryingSuitcase", 1.0), ("carryingLuggageCase", 0.8)),
    "briefcase": (("carryingSuitcase", 1.0),), "luggage": (("carryingLuggageCase", 1.0), ("carryingSuitcase", 0.8)),
    "pram": (("carryingBabyBuggy", 1.0),), "stroller": (("carryingBabyBuggy", 1.0),),
    "buggy": (("carryingBabyBuggy", 1.0),), "pushchair": (("carryingBabyBuggy", 1.0),),
    "young": (("personalLess30", 1.0), ("personalLess15", 1.0)), "youthful": (("personalLess30", 1.0),),
    "teen": (("personalLess30", 1.0), ("personalLess15", 0.8)),
    "teenager": (("personalLess30", 1.0), ("personalLess15", 0.8)), "student": (("personalLess30", 1.0),),
    "child": (("personalLess15", 1.0),), "kid": (("personalLess15", 1.0),),
    "adult": (("personalLess45", 1.0), ("personalLess30", 0.5), ("personalLess60", 0.5)),
    "middleaged": (("personalLess60", 1.0), ("personalLess45", 0.8)),
    "mature": (("personalLess60", 1.0), ("personalLess45", 0.7)),
    "old": (("personalLarger60", 1.0), ("personalLess60", 0.8)), "older": (("personalLess60", 1.0),
                                                                            ("personalLarger60", 1.0)),
    "elderly": (("personalLarger60", 1.0), ("personalLess60", 0.7)), "senior": (("personalLarger60", 1.0),),
    "striped": (("upperBodyThinStripes", 1.0), ("upperBodyThickStripes", 1.0)),
    "stripy": (("upperBodyThinStripes", 1.0), ("upperBodyThickStripes", 1.0)),
    "stripes": (("upperBodyThinStripes", 1.0), ("upperBodyThickStripes", 1.0)),
    "plaid": (("upperBodyPlaid", 1.0),), "checked": (("upperBodyPlaid", 1.0),), "logo": (("upperBodyLogo", 1.0),),
    "formal": (("upperBodyFormal", 1.0), ("lowerBodyFormal", 1.0)),
    "smart": (("upperBodyFormal", 0.8), ("lowerBodyFormal", 0.8)),
    "casual": (("upperBodyCasual", 1.0), ("lowerBodyCasual", 1.0)), "sleeveless": (("upperBodyNoSleeve", 1.0),),
}
_HEAD_PHRASES = {("short", "skirt"): "miniskirt", ("long", "skirt"): "dress", ("maxi", "skirt"): "dress",
                 ("hot", "pants"): "shorts", ("plastic", "bag"): "plasticbag", ("shopping", "bag"): "plasticbag",
                 ("carrier", "bag"): "plasticbag", ("leather", "shoe"): "leathershoes",
                 ("formal", "shoe"): "leathershoes", ("middle", "aged"): "middleaged",
                 ("sports", "shoe"): "sneakers", ("hair", "band"): "hairband", ("head", "band"): "headband",
                 ("baby", "buggy"): "buggy", ("trolley", "case"): "luggage", ("suit", "jacket"): "blazer",
                 ("capri", "pants"): "capri", ("cropped", "trousers"): "capri"}
HEAD_WORDS["plasticbag"] = (("carryingPlasticBags", 1.0),)
HEAD_WORDS["leathershoes"] = (("footwearLeatherShoes", 1.0),)
_HAIR_COLOUR_HEADS = {"black": (("hairBlack", 1.0),), "dark": (("hairBlack", 1.0), ("hairBrown", 0.6)),
                      "brown": (("hairBrown", 1.0),), "grey": (("hairGrey", 1.0), ("hairWhite", 0.7)),
                      "silver": (("hairGrey", 1.0), ("hairWhite", 1.0)), "white": (("hairWhite", 1.0),
                                                                                  ("hairGrey", 0.8)),
                      "yellow": (("hairYellow", 1.0),), "gold": (("hairYellow", 1.0),),
                      "golden": (("hairYellow", 1.0),), "light": (("hairYellow", 0.7), ("hairGrey", 0.4))}
_FOOTWEAR = {"shoe", "shoes", "sneakers", "sneaker", "trainers", "trainer", "boots", "boot", "sandals", "heels",
             "leathershoes"}
_REGION_PREFIX = {UPPER: ("upperBody",), LOWER: ("lowerBody",), ANY: ("upperBody", "lowerBody")}
# Attribute-engine words the heads take over from the garment table (with their own, finer PETA meaning).
_GARMENT_HEADS = {w for w in HEAD_WORDS if w in GARMENTS}


def _colour_targets(prefix: tuple[str, ...], spec: ColourSpec) -> tuple[tuple[str, float], ...]:
    return tuple((f"{p}{colour.capitalize()}", credit) for p in prefix for colour, credit in spec.credits)


def parse_heads(text: str) -> HeadQuery:
    """Parse a description into constraints on PETA's labels (the learned engine's heads)."""
    base = parse(text)  # validates the text too
    toks, _ = tokenise(text)
    words = [t.word for t in toks]
    out: list[HeadConstraint] = []
    for c in base.constraints:
        if c.kind == "attribute":
            if c.target == "long_pants" or (c.implied and c.target in ("coat_jacket", "long_sleeves")):
                continue  # garment words map onto PETA's own garment labels below
            out.append(HeadConstraint(_ATTRIBUTE_HEADS[c.target], c.positive, c.text, c.implied))
        elif c.target == BOTH:  # "all in black": each half carries half of the stated colour
            assert c.colour is not None, "parse() gives every colour constraint a ColourSpec"
            for prefix in ("upperBody", "lowerBody"):
                out.append(HeadConstraint(_colour_targets((prefix,), c.colour), c.positive, c.text, c.implied,
                                          c.weight / 2))
        else:
            assert c.colour is not None, "parse() gives every colour constraint a ColourSpec"
            out.append(HeadConstraint(_colour_targets(_REGION_PREFIX[c.target], c.colour), c.positive, c.text,
                                      c.implied, c.weight))
    i, merged = 0, []  # multi-word units the heads know
    while i < len(words):
        pair = tuple(words[i:i + 2])
        if pair in _HEAD_PHRASES or (len(pair) == 2 and (pair[0], pair[1].rstrip("s")) in _HEAD_PHRASES):
            merged.append((_HEAD_PHRASES.get(pair) or _HEAD_PHRASES[(pair[0], pair[1].rstrip("s"))],
                           f"{toks[i].raw} {toks[i + 1].raw}", i))
            i += 2
        else:
            merged.append((words[i], toks[i].raw, i))
            i += 1
    neg = _negation_scopes(words)
    understood: set[str] = set()
    for k, (w, raw, pos) in enumerate(merged):
        positive = not neg[pos]
        if w in HEAD_WORDS and w not in ("sleeveless",):
            out.append(HeadConstraint(HEAD_WORDS[w], positive, raw))
            understood.add(raw)
        elif w in ("hair", "haired") and k > 1 and merged[k - 1][0] in COLOUR_WORDS:
            # "long black hair": parse() only sees "long hair" when the words touch
            back = k - 1
            while back > 0 and merged[back][0] in set(COLOUR_WORDS) | _MODIFIERS | {"and"}:
                back -= 1
            if merged[back][0] in ("long", "short"):
                out.append(HeadConstraint(
                    (("hairLong", 1.0),) if merged[back][0] == "long" else (("hairShort", 1.0),), positive,
                    f"{merged[back][1]} {raw}"))
        # colour words followed by hair / a shoe word
        if w in COLOUR_WORDS or w in _HAIR_COLOUR_HEADS:
            j = k + 1
            while j < len(merged) and (merged[j][0] in COLOUR_WORDS or merged[j][0] in _MODIFIERS
                                       or merged[j][0] in ("and", "or", "long", "short", "curly")):
                j += 1
            if j < len(merged) and merged[j][0] in ("hair", "haired") and w in _HAIR_COLOUR_HEADS:
                out.append(HeadConstraint(_HAIR_COLOUR_HEADS[w], positive, f"{raw} {merged[j][1]}"))
                understood.add(f"{raw} {merged[j][1]}")
            elif j < len(merged) and merged[j][0] in _FOOTWEAR and w in COLOUR_WORDS:
                spec = dict(COLOUR_WORDS[w])
                out.append(HeadConstraint(tuple((f"footwear{c.capitalize()}", v) for c, v in spec.items()), positive,
                                          f"{raw} {merged[j][1]}"))
                understood.add(f"{raw} {merged[j][1]}")
    # sleeves: parse() knows long/short sleeves as one attribute; PETA has three
    for hc in list(out):
        if hc.targets == _ATTRIBUTE_HEADS["long_sleeves"] and not hc.positive and not hc.implied:
            sleeveless = "sleeveless" in hc.text
            out.remove(hc)
            out.append(HeadConstraint((("upperBodyNoSleeve", 1.0),) if sleeveless else
                                      (("upperBodyShortSleeve", 1.0), ("upperBodyNoSleeve", 0.7)), True, hc.text))
    # A specific carried thing ("suitcase", "plastic bag") replaces parse()'s generic bag for the same words.
    specific = {c.text.split()[-1] for c in out if c.targets != _PETA_BAGS and c.targets[0][0].startswith("carrying")}
    out = [c for c in out if not (c.targets == _PETA_BAGS and c.text.split()[-1] in specific)]
    phrase_words = {w for u in understood for w in u.split()}
    unknown = [u for u in base.unknown_words if u not in understood and u.split()[-1] not in HEAD_WORDS
               and not any(u.endswith(x) for x in understood) and u not in phrase_words]
    unknown = [f"{u} (bag colours are not labelled)" if u.split()[-1] in ACCESSORIES and u.split()[-1] not in
               ("hat", "cap") and len(u.split()) > 1 else u for u in unknown]
    seen, unique = set(), []
    for hc in out:
        key = (hc.targets, hc.positive)
        if key in seen:
            continue
        seen.add(key)
        unique.append(hc)
    # an explicit garment word beats what parse() implied from it
    return HeadQuery(text, tuple(unique), tuple(dict.fromkeys(unknown)))
