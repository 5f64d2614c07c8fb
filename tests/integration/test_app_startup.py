"""What the app does before the first click: weights checked on the first screen, models preloaded, the example
clip cut once (errors worded for the app: tests/unit/test_app_startup.py)."""
from dataclasses import replace

import cv2

from reid_core.detection import DetectorConfig
from reid_core.settings import Settings

DEFAULT_SETTINGS = Settings.from_env().ingest


def test_missing_weights_are_named_on_the_first_screen(tmp_path, monkeypatch):
    import app
    from ui import startup

    assert startup.missing_weights(DEFAULT_SETTINGS) == []  # everything is in ../shared here
    broken = replace(DEFAULT_SETTINGS, detector=DetectorConfig(model="no_such_detector"))
    [message] = startup.missing_weights(broken)
    assert "no_such_detector" in message
    monkeypatch.setattr(startup, "missing_weights", lambda settings: ["model x: x.bin not found"])
    demo = app.build_app(tmp_path / "store", preload=False)
    texts = [b.value for b in demo.blocks.values() if type(b).__name__ == "Markdown" and b.value]
    assert any("Model files are missing" in t and "x.bin not found" in t for t in texts)


def test_example_clip_is_cut_once(tmp_path, monkeypatch):
    from tests.integration.conftest import VIDEO
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


