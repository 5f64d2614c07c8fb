"""Shared fixtures: the real clip and weights from ../shared, and stores ingested once per test session."""
from __future__ import annotations

import os
import socket
from contextlib import contextmanager
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PETS = SHARED / "data" / "pets09_s2l1"
VIDEO = PETS / "vtest.avi"
GT = PETS / "gt.txt"
PERSONS = PETS / "persons.json"
ARTIFACTS = ROOT / "test-artifacts"


def pytest_sessionstart(session):
    if not VIDEO.exists():
        raise pytest.UsageError(f"the real test data is missing: {VIDEO} (tests need ../shared beside the repo)")
    ARTIFACTS.mkdir(exist_ok=True)


@pytest.fixture(scope="session")
def pets_store(tmp_path_factory):
    """A store holding PETS09-S2L1 frames 0-199, ingested with the default settings (real models)."""
    from reid_core.ingest import ingest
    from reid_core.store import Store

    path = tmp_path_factory.mktemp("pets_store")
    store = Store(path)
    result = ingest(VIDEO, store, camera="pets-view1", from_frame=0, to_frame=199)
    return store, result


@pytest.fixture
def store_copy(pets_store, tmp_path):
    """A private copy of the session store, for tests that modify it."""
    from reid_core.store import Store

    store, _ = pets_store
    dest = tmp_path / "store"
    store.env.copy(str(dest.mkdir() or dest))
    return Store(dest)


@pytest.fixture
def cli_env(tmp_path):
    env = dict(os.environ)
    env["REID_STORE"] = str(tmp_path / "cli_store")
    return env


def reid_cli() -> list[str]:
    exe = shutil.which("reid", path=str(Path(os.sys.executable).parent))
    return [exe] if exe else [os.sys.executable, "-m", "reid_core"]


@contextmanager
def served(demo):
    """Launch a Gradio Blocks on a free local port with the queue on; yield its URL; close it afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        css=getattr(demo, "reid_css", None))
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
