"""checks.* (ranges), names.* (what a new identity name may be) and ReidError's per-shell hints, beyond the filed
probes in test_input_checks.py."""
import pytest

from reid_core import checks
from reid_core.errors import InputError, OverlapError, ReidError, StoreError, VideoError, WeightsError
from reid_core.names import validate_camera, validate_name, validate_new_name


def test_frame_range_blank_text_names_and_order():
    assert checks.frame_range(" 3 ", "  ") == (3, None)
    assert checks.frame_range(None, 0) == (None, 0)
    assert checks.frame_range(4, 4) == (4, 4)  # one frame is a range
    with pytest.raises(InputError, match="From frame 9 is after To frame 2"):
        checks.frame_range("9", "2", names=("From frame", "To frame"))
    with pytest.raises(InputError, match="--to-frame must be a whole number"):
        checks.frame_range(0, 1.5)
    with pytest.raises(InputError, match="--from-frame must be at least 0"):
        checks.frame_range(-2, None)


def test_score_and_count_name_the_option():
    assert checks.score(0.5, "--min-score") == 0.5
    with pytest.raises(InputError, match="^--min-score must be between 0 and 1"):
        checks.score(2, "--min-score")
    with pytest.raises(InputError, match="--threshold must be a number"):
        checks.score([0.5])
    assert checks.count("7", "--crops", minimum=5) == 7
    with pytest.raises(InputError, match="--crops must be at least 5, got 4"):
        checks.count(4, "--crops", minimum=5)
    for bad in (float("inf"), "two", None):
        with pytest.raises(InputError, match="whole number"):
            checks.count(bad)


def test_positive_setting(monkeypatch):
    monkeypatch.delenv("REID_TEST_SETTING", raising=False)
    assert checks.positive_setting("REID_TEST_SETTING", 2.5, "MB") == 2.5
    monkeypatch.setenv("REID_TEST_SETTING", "8")
    assert checks.positive_setting("REID_TEST_SETTING", 2.5, "MB") == 8.0
    for bad, msg in (("lots", "must be a number of MB"), ("0", "more than 0"), ("-1", "more than 0"),
                     ("inf", "more than 0"), ("nan", "more than 0")):
        monkeypatch.setenv("REID_TEST_SETTING", bad)
        with pytest.raises(InputError, match=msg):
            checks.positive_setting("REID_TEST_SETTING", 2.5, "MB")


@pytest.mark.parametrize("bad,msg", [(None, "must be text"), (42, "must be text"), ("", "is empty"),
                                     ("   ", "is empty"), ("x" * 65, "longer than 64"),
                                     ("al\u200bice", "invisible formatting"), ("a/b", "path separator"),
                                     ("a\\b", "path separator"), ("..x", "path separator"), (".hidden", "'..'"),
                                     ("bob<script>", "characters other than")])
def test_identity_name_basics(bad, msg):
    with pytest.raises(StoreError, match=msg):
        validate_new_name(bad)


def test_identity_names_that_pass_are_normalised():
    assert validate_name("  O'Brien-Smith Jr. ") == "O'Brien-Smith Jr."
    assert validate_name("x" * 64) == "x" * 64
    assert validate_new_name("p07", ["p01", "p08"]) == "p07"
    assert validate_new_name("ｐ０７") == "p07"  # full-width, NFKC
    with pytest.raises(StoreError, match="looks like the existing identity 'p07'"):
        validate_new_name("P07", ["p07"])
    with pytest.raises(InputError):  # cameras raise InputError, identities StoreError
        validate_camera("a/b")


def test_reid_error_hints_per_shell():
    e = ReidError("frames 0..9 are already ingested", cli_hint="pass --replace", app_hint='tick "Replace"')
    assert str(e) == "frames 0..9 are already ingested"  # the message itself names no flag or button
    assert e.for_cli() == "frames 0..9 are already ingested; pass --replace"
    assert e.for_app() == 'frames 0..9 are already ingested; tick "Replace"'
    plain = InputError("bad box")
    assert plain.for_cli() == plain.for_app() == "bad box" and plain.cli_hint == plain.app_hint == ""
    only_cli = StoreError("no such identity", cli_hint="see `reid gallery list`")
    assert only_cli.for_app() == "no such identity" and only_cli.for_cli().endswith("`reid gallery list`")
    for cls in (WeightsError, VideoError, StoreError, InputError, OverlapError):
        assert issubclass(cls, ReidError)
    assert issubclass(OverlapError, StoreError)
    with pytest.raises(ReidError):
        raise OverlapError("x", cli_hint="y")
