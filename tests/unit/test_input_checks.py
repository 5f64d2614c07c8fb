"""Input hygiene: identity/camera names, ranges, image size caps, and the checks behind the CLI's error
contract, on synthetic stores and images (no data, no models). The CLI probes themselves (one clear line, exit
code 2, no traceback, store unchanged): tests/integration/test_input_checks.py."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from reid_core import checks
from reid_core.crops import check_image, decode_image, encode_jpeg
from reid_core.errors import InputError, StoreError
from reid_core.names import (
    camera_from_filename,
    check_camera,
    skeletons,
    validate_camera,
    validate_name,
    validate_new_name,
)
from reid_core.store import CropMeta, Store

VIDEO_ID = "ab" * 32


def png(width: int, height: int) -> bytes:
    """A valid all-black greyscale PNG of any size, built in well under a second: one compressed block of rows,
    full-flushed so that its compressed form can simply be repeated (OpenCV decodes the result in full)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = 200
    assert height % rows == 0
    block = (b"\0" * (width + 1)) * rows
    c = zlib.compressobj(9)
    first = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    rest = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    adler = 1
    for _ in range(height // rows):
        adler = zlib.adler32(block, adler)
    stream = first + rest * (height // rows - 1) + b"\x03\x00" + struct.pack(">I", adler)  # empty final block
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", stream) + chunk(b"IEND", b""))


def synthetic_store(path) -> Store:
    """Two identities, alice and bob, each holding one real JPEG crop (no video, no model)."""
    store = Store(path)
    rng = np.random.default_rng(0)
    with store.write() as txn:
        for i in range(2):
            key = f"{VIDEO_ID}/{i:08d}_00"
            feature = rng.normal(size=512).astype(np.float32)
            store.put_crop(txn, key, encode_jpeg(np.full((64, 32, 3), 40 * i, np.uint8)),
                           CropMeta(VIDEO_ID, "cam1", i, [0, 0, 32, 64], 0.9, i + 1, "run"),
                           feature / np.linalg.norm(feature))
    store.add_to_identity("alice", [f"{VIDEO_ID}/00000000_00"])
    store.add_to_identity("bob", [f"{VIDEO_ID}/00000001_00"])
    return store


# ---- names ------------------------------------------------------------------------------------------------------
def test_names_are_nfkc_normalised():
    assert validate_name("ａｌｉｃｅ") == "alice"  # full-width letters
    assert validate_name("Jose\u0301") == "José"  # combining accent composed
    assert validate_new_name("José Núñez", ["alice"]) == "José Núñez"


@pytest.mark.parametrize("name", ["unknown", "Unknown", "UNKNOWN", " unknown ", "unkn0wn", "ｕｎｋｎｏｗｎ"])
def test_unknown_is_reserved(name):
    with pytest.raises(StoreError, match="reserved"):
        validate_new_name(name)


@pytest.mark.parametrize("name,existing", [("Alice", "alice"), ("ALICE", "alice"), ("AIice", "alice"),
                                           ("al1ce", "alIce"), ("аре", "ape"), ("0scar", "Oscar")])
def test_look_alikes_of_existing_names_are_refused_naming_them(name, existing):
    assert skeletons(name) & skeletons(existing)
    with pytest.raises(StoreError, match=f"looks like the existing identity '{existing}'"):
        validate_new_name(name, [existing, "bob"])


def test_mixed_scripts_refused_single_scripts_and_cjk_combinations_allowed():
    with pytest.raises(StoreError, match="mixes scripts"):
        validate_new_name("\u0430lice")  # Cyrillic а + Latin
    with pytest.raises(StoreError, match="mixes scripts"):
        validate_new_name("Alloτ")  # Greek tau
    for ok in ["Zhang Wei", "山田 たろう", "김민준", "Дмитрий", "p07"]:
        assert validate_new_name(ok, ["alice"]) == ok


def test_different_names_pass_and_an_identity_may_keep_its_own_name():
    assert validate_new_name("Alicia", ["alice"]) == "Alicia"
    assert validate_new_name("alice", ["alice"]) == "alice"  # itself, not a look-alike


@pytest.mark.parametrize("bad", ["![x](https://evil.example/p.png)", "<img src=x>", "cam`1`", "a/b", "", "  ",
                                 "cam\u200b1", "x" * 65, "..", "cam*1*"])
def test_bad_camera_names(bad):
    with pytest.raises(InputError, match="camera name"):
        validate_camera(bad)


def test_camera_names_and_file_name_default():
    assert validate_camera("PETS view 1") == "PETS view 1"
    assert validate_camera("north-gate_2.cam") == "north-gate_2.cam"
    assert check_camera(None, "/x/vtest.avi") is None  # a valid file name stays the store's default
    assert check_camera(None, "/x/![a](http:__e).avi") == camera_from_filename("/x/![a](http:__e).avi")
    validate_camera(camera_from_filename("/x/![a](http:__e).avi"))
    with pytest.raises(InputError):
        check_camera("<b>x</b>", "/x/vtest.avi")


# ---- the store asks the validator, with the names it holds --------------------------------------------------------
def test_store_refuses_look_alikes_and_reserved_when_creating_identities(tmp_path):
    store = synthetic_store(tmp_path / "s")
    key = f"{VIDEO_ID}/00000001_00"
    before = store.dump()
    with pytest.raises(StoreError, match="'alice'"):
        store.add_to_identity("ALICE", [key])
    with pytest.raises(StoreError, match="reserved"):
        store.add_to_identity("Unknown", [key])
    with pytest.raises(StoreError, match="'alice'"):
        store.rename_identity("bob", "a\u006cice".replace("l", "I"))
    with pytest.raises(StoreError, match="mixes scripts"):
        store.merge_identities(["bob"], "b\u043eb")  # Cyrillic о
    with pytest.raises(StoreError, match="'alice'"):
        store.merge_identities(["bob"], "Alice ")  # a new target resembling another identity
    assert store.dump() == before
    assert store.add_to_identity("alice", [key]).name == "alice"  # adding to the existing one is fine
    assert store.rename_identity("bob", "Bob").name == "Bob"  # a case change of itself is a rename, not a clash
    assert store.merge_identities(["Bob"], "bobby").name == "bobby"


# ---- ranges -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [-1, -0.01, 1.01, float("nan"), float("inf"), "nan", "abc", None])
def test_score_thresholds_must_be_finite_in_0_1(bad):
    with pytest.raises(InputError, match="--threshold"):
        checks.score(bad)


def test_counts_frames_and_export_paths(tmp_path):
    assert checks.score("0.8") == 0.8 and checks.score(0) == 0.0 and checks.score(1) == 1.0
    assert checks.count(3.0) == 3 and checks.count("2") == 2
    for bad in (0, -4, 2.5, float("nan")):
        with pytest.raises(InputError, match="--top-k"):
            checks.count(bad)
    assert checks.frame_range(None, "") == (None, None) and checks.frame_range(0, 5) == (0, 5)
    with pytest.raises(InputError, match="--from-frame"):
        checks.frame_range(-1, 5)
    with pytest.raises(InputError, match="after"):
        checks.frame_range(9, 5)
    assert checks.export_path(tmp_path / "out.csv") == tmp_path / "out.csv"
    with pytest.raises(InputError, match="does not exist"):
        checks.export_path(tmp_path / "missing" / "out.csv")
    with pytest.raises(InputError, match=".csv or .json"):
        checks.export_path(tmp_path / "out.txt")
    (tmp_path / "d.json").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        checks.export_path(tmp_path / "d.json")


# ---- image size caps --------------------------------------------------------------------------------------------
def test_image_pixel_cap_from_the_header():
    big = png(8000, 7000)  # 56 MP: 170 kB on disk, 56 MB decoded
    assert len(big) < 1_000_000
    with pytest.raises(InputError, match="8000x7000 px"):
        decode_image(big)
    with pytest.raises(InputError, match="MP"):
        decode_image(png(20000, 20000))  # beyond even PIL's own bomb limit
    assert check_image(big, max_pixels=60_000_000) == (8000, 7000)
    assert decode_image(png(400, 200)).shape == (200, 400, 3)
    with pytest.raises(InputError, match="not a readable image"):
        decode_image(b"GIF89a-not-really")
