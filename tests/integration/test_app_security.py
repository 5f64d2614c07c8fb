"""The app as an attacker sees it: login throttling and lockout over plain HTTP, the upload cap, the app's own temp
folder, and a deleted identity's thumbnail no longer served. A synthetic store, no models (the throttle, the
retention sweep and Markdown escaping on their own: tests/unit/test_app_security.py)."""
from __future__ import annotations

import socket
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from reid_core.errors import InputError
from tests.unit.test_input_checks import synthetic_store


@contextmanager
def served_app(store_path):
    """Like tests.conftest.served, but launched with the app's own launch options (auth, upload cap...)."""
    import app

    demo = app.build_app(store_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    options = app.launch_options(demo)
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **options)
    try:
        yield f"http://127.0.0.1:{port}", demo, options
    finally:
        demo.close()


def _login(url, user, password):
    t0 = time.monotonic()
    r = requests.post(f"{url}/login", data={"username": user, "password": password}, timeout=30)
    return r, time.monotonic() - t0


def test_login_throttle_and_lockout_over_http(tmp_path, monkeypatch):
    monkeypatch.setenv("REID_AUTH", "alice:correct horse")
    monkeypatch.setenv("REID_LOGIN_DELAY_S", "0.05")
    monkeypatch.setenv("REID_LOGIN_LOCKOUT_S", "0.6")
    monkeypatch.setenv("REID_LOGIN_MAX_FAILURES", "5")
    with served_app(tmp_path / "store") as (url, _, options):
        assert requests.get(f"{url}/config", timeout=30).status_code == 401  # nothing without logging in
        times = []
        for _ in range(5):
            r, took = _login(url, "alice", "wrong")
            assert r.status_code == 400
            times.append(took)
        for n in range(1, 5):  # failure n waits delay * 2**(n-1) before answering the next attempt
            assert times[n] >= 0.05 * 2 ** (n - 1)
        r, took = _login(url, "alice", "correct horse")  # locked: even the right password is refused, at once
        assert r.status_code == 429 and "try again" in r.json()["detail"] and took < 0.3
        assert int(r.headers["Retry-After"]) >= 1
        records = options["auth"].throttle._records
        assert ("client", "127.0.0.1") in records  # counted per client address too, not only per user name
        time.sleep(0.65)
        r, _ = _login(url, "alice", "correct horse")
        assert r.status_code == 200 and r.json() == {"success": True}
        assert ("user", "alice") not in records  # a success forgives the user name
        for _ in range(5):
            _login(url, "nobody", "guess")  # unknown names are throttled the same way (one shared record)
        r, _ = _login(url, "someone-else", "guess")
        assert r.status_code == 429


def test_upload_cap_and_uploads_land_in_the_apps_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("REID_AUTH", raising=False)
    monkeypatch.delenv("REID_AUTH_FILE", raising=False)
    monkeypatch.delenv("REID_APP_TMP", raising=False)
    monkeypatch.setenv("REID_MAX_UPLOAD_MB", "1")
    with served_app(tmp_path / "store") as (url, demo, _):
        r = requests.post(f"{url}/gradio_api/upload", files={"files": ("big.avi", b"\0" * (1536 * 1024))},
                          timeout=30)
        assert r.status_code == 413 and "maximum allowed size of 1048576 bytes" in r.text
        r = requests.post(f"{url}/gradio_api/upload", files={"files": ("small.avi", b"\0" * 1024)}, timeout=30)
        assert r.status_code == 200
        uploaded = Path(r.json()[0])
        assert uploaded.is_file() and uploaded.is_relative_to(tmp_path / "store" / ".app_tmp")
        assert demo.reid_files.root == (tmp_path / "store" / ".app_tmp").resolve()
    monkeypatch.setenv("REID_MAX_UPLOAD_MB", "lots")
    import app

    with pytest.raises(InputError, match="REID_MAX_UPLOAD_MB"):
        app.max_upload_mb()


def test_deleted_identity_thumbnail_is_no_longer_served(tmp_path, monkeypatch):
    from gradio_client import Client

    monkeypatch.delenv("REID_AUTH", raising=False)
    monkeypatch.delenv("REID_AUTH_FILE", raising=False)
    monkeypatch.delenv("REID_APP_TMP", raising=False)
    synthetic_store(tmp_path / "store")
    with served_app(tmp_path / "store") as (url, demo, _):
        client = Client(url, verbose=False, download_files=False)
        _, pics, table, *_ = client.predict(api_name="/gallery_list")
        thumbs = {item["caption"].split(" (")[0]: item["image"]["url"] for item in pics}
        assert sorted(thumbs) == ["alice", "bob"] and [row[0] for row in table["data"]] == ["alice", "bob"]
        assert requests.get(thumbs["alice"], timeout=30).content[:3] == b"\xff\xd8\xff"  # the stored JPEG
        files_before = {p.name for p in (demo.reid_files.root / "crops").rglob("*.jpg")}
        message, pics, *_ = client.predict("alice", api_name="/gallery_delete")
        assert message.startswith("Deleted alice") and len(pics) == 1
        assert requests.get(thumbs["alice"], timeout=30).status_code in (403, 404)
        assert requests.get(thumbs["bob"], timeout=30).status_code == 200
        files_after = {p.name for p in (demo.reid_files.root / "crops").rglob("*.jpg")}
        assert files_before - files_after == {"00000000_00.jpg"}
        message, *_ = client.predict("![x](https://evil.example/p.png)", api_name="/gallery_delete")
        assert "![" not in message and "\\!\\[x\\]" in message  # echoed input cannot become an image


