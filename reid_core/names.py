"""Names people type: identity names and camera names. One place decides what is accepted, so the store, the
CLI and the app refuse the same things with the same message.

Identity names are NFKC-normalised (a full-width "ａｌｉｃｅ" is "alice"), may not be "unknown" (the open-set
answer: an identity of that name would be indistinguishable from a stranger in every result list), may not mix
scripts (a Cyrillic "а" inside a Latin name), and a *new* name may not look like an existing one: both are reduced
to a skeleton (each character mapped to one prototype of its Unicode confusable class, then case-folded, after
UTS #39) and equal skeletons are refused with the existing name in the message. The confusable classes come from
the `confusable-homoglyphs` package's copy of Unicode's confusables.txt.

Camera names end up in Markdown and tables in the app, so they are held to a narrow set: letters, digits, space
and . _ -.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from reid_core.errors import InputError, StoreError

NAME_MAX = 64
CAMERA_MAX = 64
RESERVED = ("unknown",)
_NAME_RE = re.compile(r"[\w .'\-]+")
_CAMERA_RE = re.compile(r"[\w .\-]+")
# Scripts that legitimately appear together in one name (UTS #39 "highly restrictive"): Japanese mixes Han with
# the kana, Korean Han with Hangul, Chinese Han with Bopomofo; each may carry Latin. COMMON (digits, punctuation,
# space) and INHERITED (combining marks) belong to every script.
_SCRIPT_SETS = ({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}, {"LATIN", "HAN", "BOPOMOFO"}, {"LATIN", "HAN", "HANGUL"})
_NEUTRAL_SCRIPTS = {"COMMON", "INHERITED"}


def _basic(name: object, what: str, pattern: re.Pattern, allowed: str, limit: int, error: type) -> str:
    if not isinstance(name, str):
        raise error(f"{what} must be text")
    cleaned = unicodedata.normalize("NFKC", name).strip()
    if not cleaned:
        raise error(f"{what} is empty")
    if len(cleaned) > limit:
        raise error(f"{what} is longer than {limit} characters")
    if any(unicodedata.category(c).startswith("C") for c in cleaned):
        raise error(f"{what} contains control or invisible formatting characters")
    if "/" in cleaned or "\\" in cleaned or ".." in cleaned or cleaned.startswith("."):
        raise error(f"{what} {name!r} contains a path separator or '..'; use {allowed}")
    if not pattern.fullmatch(cleaned):
        raise error(f"{what} {name!r} has characters other than {allowed}")
    return cleaned


def validate_name(name: object) -> str:
    """The normalised identity name, or StoreError. Enough for looking a name up; creating one needs
    `validate_new_name` (reserved words, scripts, look-alikes)."""
    return _basic(name, "identity name", _NAME_RE, "letters, digits, spaces and . _ - '", NAME_MAX, StoreError)


def scripts(text: str) -> set[str]:
    """The Unicode scripts of `text`'s characters, without the ones every script shares."""
    from confusable_homoglyphs.categories import alias

    return {alias(c) for c in text} - _NEUTRAL_SCRIPTS


@cache
def _prototypes() -> dict[str, str]:
    """Character -> the prototype of its confusable class. The package lists, per character, its single-character
    homoglyphs; the classes are the connected groups of that relation (so "l", "I", "1" and "|" are one class, as in
    confusables.txt), each represented by its plainest member: an ASCII lower-case letter, else an ASCII letter,
    else any ASCII character, else the lowest code point."""
    from confusable_homoglyphs.confusables import confusables_data

    parent: dict[str, str] = {}
    seen: set[str] = set()

    def find(c: str) -> str:
        root = c
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(c, c) != root:  # path compression keeps the build linear
            parent[c], c = root, parent[c]
        return root

    for char, glyphs in confusables_data.items():
        if len(char) != 1:
            continue
        for g in glyphs:
            other = g["c"].replace("\u200e", "").replace("\u200f", "")  # direction marks around RTL glyphs
            if len(other) == 1:
                seen.update((char, other))
                a, b = find(char), find(other)
                if a != b:
                    parent[a] = b
    groups: dict[str, list[str]] = {}
    for c in seen:
        groups.setdefault(find(c), []).append(c)

    def plainness(c: str) -> tuple[bool, bool, bool, int]:
        return (not (c.isascii() and c.islower()), not (c.isascii() and c.isalpha()), not c.isascii(), ord(c))

    table: dict[str, str] = {}
    for members in groups.values():
        proto = min(members, key=plainness)
        table.update((c, proto) for c in members)
    return table


def skeleton(name: str) -> str:
    """What a name looks like (UTS #39 style, case-folded): two names with the same skeleton are easy to mistake
    for each other on screen."""
    table = _prototypes()
    text = unicodedata.normalize("NFKC", name).strip()
    return unicodedata.normalize("NFD", "".join(table.get(c, c) for c in text).casefold())


def skeletons(name: str) -> set[str]:
    """The skeleton of the name as written and of its case-folded form. Confusable classes are case-sensitive
    (capital I looks like small l, small i does not), so "ALICE" and "alice" only meet through the folded form;
    the price is that a few all-capital names collide with names they do not resemble ("ALI" and "ALL"), which the
    refusal message makes plain."""
    text = unicodedata.normalize("NFKC", name).strip()
    return {skeleton(text), skeleton(text.casefold())}


def validate_new_name(name: object, existing: Iterable[str] = ()) -> str:
    """A name for a new identity (enroll into a new name, rename or merge target), checked against the names the
    store already holds (`existing`, minus the identity being renamed). Returns the normalised name; StoreError
    names the reason and, for a look-alike, the existing identity."""
    cleaned = validate_name(name)
    if cleaned.casefold() in RESERVED or skeletons(cleaned) & {skeleton(r) for r in RESERVED}:
        raise StoreError(f"{cleaned!r} is reserved: result lists use it for people who match no identity")
    found = scripts(cleaned)
    if len(found) > 1 and not any(found <= allowed for allowed in _SCRIPT_SETS):
        raise StoreError(f"identity name {cleaned!r} mixes scripts ({', '.join(sorted(found)).lower()}); "
                         "write it in one script")
    mine = skeletons(cleaned)
    for other in existing:
        if other != cleaned and skeletons(other) & mine:
            raise StoreError(f"identity name {cleaned!r} looks like the existing identity {other!r}; "
                             f"use {other!r} or a clearly different name")
    return cleaned


def validate_camera(name: object) -> str:
    """A camera/source name: letters, digits, space . _ - (no markup: it is shown in the app); InputError."""
    return _basic(name, "camera name", _CAMERA_RE, "letters, digits, spaces and . _ -", CAMERA_MAX, InputError)


def camera_from_filename(path: str | Path) -> str:
    """A valid camera name made from a file name (uploads arrive with whatever name the sender gave them)."""
    stem = unicodedata.normalize("NFKC", Path(path).stem)
    safe = re.sub(r"[^\w .\-]+", "_", stem).replace("..", "_").strip(" .")[:CAMERA_MAX].strip()
    return safe or "video"


def check_camera(camera: str | None, video_path: str | Path) -> str | None:
    """The camera argument of an ingest, checked: an explicit name must be valid; with none given, the store
    defaults to the file name, which is kept when it is already a valid camera name and cleaned up otherwise."""
    if camera is not None:
        return validate_camera(camera)
    try:
        validate_camera(Path(video_path).stem)
        return None
    except InputError:
        return camera_from_filename(video_path)
