"""The app's own folder for everything it hands to browsers: uploads, crop thumbnails and exports.

Gradio keeps uploads and every image or file an app returns in its cache folder, by default one folder in the
system temp directory shared by every Gradio app on the host, and never deletes them. This app points Gradio's
cache at a folder of its own ($REID_APP_TMP, default `<store>/.app_tmp`) by setting GRADIO_TEMP_DIR before any
component exists, so uploads land there; it writes crop thumbnails and exports there itself (files already inside
the cache are served as they are, not copied), which lets it delete an identity's thumbnails and the exports that
name it together with the identity; and it deletes whatever is older than $REID_APP_TMP_HOURS (default 24) at
start and then every quarter of that period (at most hourly).

Layout: crops/<video_id>/<frame>_<bb>.jpg (the store's own JPEG of that crop key), exports/<random>/<stem>.csv|json,
and Gradio's uploads in hashed sub-folders.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import threading
import time
from pathlib import Path

from reid_core.checks import positive_setting
from reid_core.errors import InputError

_KEY = re.compile(r"[0-9a-f]{8,64}/\d{8}_\d{2,}")  # crop keys: "{video_id}/{frame:08d}_{bb:02d}"
_sweepers: dict[str, threading.Thread] = {}
_sweepers_lock = threading.Lock()


def retention_hours() -> float:
    return positive_setting("REID_APP_TMP_HOURS", 24, "hours")


class AppFiles:
    """The app's temp folder: where thumbnails and exports go, and what is deleted when."""

    def __init__(self, root: str | Path, max_age_s: float | None = None):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_age_s = retention_hours() * 3600 if max_age_s is None else max_age_s

    @classmethod
    def for_store(cls, store_path: str | Path) -> AppFiles:
        return cls(os.environ.get("REID_APP_TMP") or Path(store_path) / ".app_tmp")

    def use_for_gradio(self) -> None:
        """Make Gradio put uploads and its cache here. Process-wide: Gradio reads the variable when components and
        the server are created, so this must run before the Blocks is built."""
        os.environ["GRADIO_TEMP_DIR"] = str(self.root)

    # ---- what the app writes --------------------------------------------------------------------------------
    def crop_path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise InputError(f"not a crop key: {key!r}")
        return self.root / "crops" / f"{key}.jpg"

    def crop_file(self, key: str, jpeg: bytes) -> str:
        """The crop's JPEG as a file Gradio can serve (written once; the store's bytes, no re-encoding)."""
        path = self.crop_path(key)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{secrets.token_hex(4)}.part")
            tmp.write_bytes(jpeg)
            os.replace(tmp, path)  # two requests writing the same crop must not serve a half-written file
        else:
            os.utime(path)  # still in use: retention counts from the last time it was shown
        return str(path)

    def export_dir(self) -> Path:
        path = self.root / "exports" / secrets.token_hex(8)
        path.mkdir(parents=True)
        return path

    # ---- deleting ---------------------------------------------------------------------------------------------
    def forget(self, names: list[str], keys: list[str]) -> int:
        """Delete the thumbnails of these crop keys and every export naming one of these identities or crops
        (called when identities are deleted, renamed or merged away). Returns the number of files removed."""
        removed = 0
        for key in keys:
            try:
                self.crop_path(key).unlink()
                removed += 1
            except (FileNotFoundError, InputError):
                pass
        names_set, keys_set = set(names), set(keys)
        exports = self.root / "exports"
        for folder in exports.iterdir() if exports.is_dir() else []:
            if any(_mentions(f, names_set, keys_set) for f in folder.glob("*.json")):
                removed += sum(1 for f in folder.iterdir() if f.is_file())
                shutil.rmtree(folder, ignore_errors=True)
        return removed

    def sweep(self, now: float | None = None) -> int:
        """Delete files older than the retention period, then empty folders. Returns the number of files."""
        now = time.time() if now is None else now
        removed = 0
        for dirpath, _, filenames in os.walk(self.root, topdown=False):
            for name in filenames:
                path = Path(dirpath) / name
                try:
                    if now - path.stat().st_mtime > self.max_age_s:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    pass
            if Path(dirpath) != self.root:
                try:
                    os.rmdir(dirpath)  # only succeeds when empty
                except OSError:
                    pass
        return removed

    def start_sweeping(self) -> None:
        """Sweep now, then every quarter of the retention period (at most hourly) in a daemon thread; one thread
        per folder however many times the app is built."""
        self.sweep()
        interval = min(3600.0, self.max_age_s / 4)
        with _sweepers_lock:
            if str(self.root) in _sweepers:
                return

            def loop() -> None:
                while True:
                    time.sleep(interval)
                    try:
                        self.sweep()
                    except OSError:  # a folder removed under us: try again next time
                        pass

            thread = threading.Thread(target=loop, name=f"reid-app-tmp-sweeper:{self.root}", daemon=True)
            _sweepers[str(self.root)] = thread
            thread.start()


def _mentions(path: Path, names: set[str], keys: set[str]) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    for t in data.get("tracks", []):
        if t.get("identity") in names or t.get("best_match") in names:
            return True
    return any(r.get("key") in keys for r in data.get("results", []))
