"""The app's defences without serving it: login throttling and lockout, the app's own temp folder with retention,
and Markdown escaping (the app over HTTP: tests/integration/test_app_security.py)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from reid_core.errors import InputError
from ui.auth import LoginThrottle
from ui.files import AppFiles
from ui.markdown import md


def test_lockout_doubles_and_clients_are_limited_across_user_names():
    now = [0.0]
    t = LoginThrottle(max_failures=2, lockout_s=10, delay_s=0.1, clock=lambda: now[0])
    user, client = ("user", "alice"), ("client", "10.0.0.1")
    assert t.begin([user, client]) == (0.0, 0.0)
    assert t.begin([user, client]) == (0.0, 0.1)  # second failure: locked for 10 s from now
    assert t.begin([user, client])[0] == pytest.approx(10)
    now[0] = 10.5
    t.begin([user, client])
    t.begin([user, client])
    assert t.begin([user, client])[0] == pytest.approx(20)  # second lockout doubled
    # one client trying many names is limited at 4x the per-name limit
    t2 = LoginThrottle(max_failures=2, lockout_s=10, delay_s=0.0, clock=lambda: 0.0)
    for i in range(8):
        assert t2.begin([("user", f"u{i}"), client])[0] == 0.0
    assert t2.begin([("user", "u99"), client])[0] == pytest.approx(10)


def test_retention_sweep_and_forget(tmp_path):
    files = AppFiles(tmp_path / "tmp", max_age_s=3600)
    old = files.root / "abc" / "old.avi"
    old.parent.mkdir()
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    fresh = Path(files.crop_file("ab" * 32 + "/00000003_01", b"\xff\xd8\xffjpeg"))
    export = files.export_dir()
    (export / "identify.json").write_text('{"threshold": 0.8, "tracks": [{"identity": "carol", "best_match": '
                                          '"carol"}]}')
    (export / "identify.csv").write_text("track_id,identity\n1,carol\n")
    assert files.sweep() == 1 and not old.exists() and not old.parent.exists() and fresh.exists()
    assert files.forget(["carol"], ["ab" * 32 + "/00000003_01"]) == 3
    assert not fresh.exists() and not export.exists()
    with pytest.raises(InputError):
        files.crop_path("../../etc/passwd")


def test_markdown_escaping():
    assert md("![x](https://e/p.png)") == "\\!\\[x\\]\\(https://e/p\\.png\\)"
    assert md("<img src=x onerror=y>") == "&lt;img src=x onerror=y&gt;"
    assert md("O'Brien") == "O'Brien"
