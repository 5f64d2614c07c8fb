"""Errors worded for the app, not the CLI, and the app's frame fields (no app launched, no models)."""
from reid_core.errors import OverlapError, StoreError


def test_errors_have_one_hint_per_shell():
    from ui.common import error_text

    e = OverlapError("frames 0..0 of this video are already ingested", cli_hint="pass --replace",
                     app_hint='tick "Replace what is stored for this range"')
    assert e.for_cli().endswith("pass --replace") and "--replace" not in e.for_app()
    assert "--" not in error_text("Not ingested", e) and "Replace what is stored" in error_text("Not ingested", e)
    assert str(StoreError("plain")) == StoreError("plain").for_app() == "plain"


def test_app_frame_fields_are_named_as_in_the_app():
    import pytest

    from reid_core.errors import InputError
    from ui.common import frame_range

    assert frame_range("", "") == (0, None) and frame_range(" 5", "9") == (5, 9)
    with pytest.raises(InputError, match="From frame 9 is after To frame 5"):
        frame_range("9", "5")
    with pytest.raises(InputError, match="To frame must be a whole number, got 'abc'"):
        frame_range("", "abc")
