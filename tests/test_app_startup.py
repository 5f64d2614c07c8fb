"""What the app does before the first click: weights checked on the first screen, models preloaded, the example
clip cut once; and errors worded for the app, not the CLI."""
from dataclasses import replace

import cv2

from reid_core.detection import DetectorConfig
from reid_core.errors import OverlapError, StoreError
from reid_core.ingest import DEFAULT_SETTINGS


def test_missing_weights_are_named_on_the_first_screen(tmp_path, monkeypatch):
    import app
    from ui import startup

    assert startup.missing_weights() == []  # everything is in ../shared here
    broken = replace(DEFAULT_SETTINGS, detector=DetectorConfig(model="no_such_detector"))
    [message] = startup.missing_weights(broken)
    assert "no_such_detector" in message
    monkeypatch.setattr(startup, "missing_weights", lambda settings=DEFAULT_SETTINGS: ["model x: x.bin not found"])
    demo = app.build_app(tmp_path / "store", preload=False)
    texts = [b.value for b in demo.blocks.values() if type(b).__name__ == "Markdown" and b.value]
    assert any("Model files are missing" in t and "x.bin not found" in t for t in texts)


def test_example_clip_is_cut_once(tmp_path, monkeypatch):
    from tests.conftest import VIDEO
    from ui import startup

    monkeypatch.setattr(startup, "cache_dir", lambda: tmp_path)
    monkeypatch.setenv("REID_EXAMPLE_VIDEO", str(VIDEO))
    clip = startup.example_clip(frames=15)
    cap = cv2.VideoCapture(str(clip))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 15 and cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 768
    cap.release()
    stamp = clip.stat().st_mtime_ns
    assert startup.example_clip(frames=15) == clip and clip.stat().st_mtime_ns == stamp
    assert not list(tmp_path.glob("examples/*.part.mp4"))
    monkeypatch.setenv("REID_EXAMPLE_VIDEO", str(tmp_path / "missing.avi"))
    assert startup.example_clip(frames=15) is None


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
