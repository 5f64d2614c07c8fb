"""The integration tier: the real clip and weights from ../shared, and stores ingested once per test session.

Without ../shared this tier stops with one clear error (pytest_collection_modifyitems below) instead of a page of
failures; tests/unit/ does not need it and runs anywhere."""
from __future__ import annotations

import os

import pytest

from tests.conftest import ARTIFACTS, ROOT, reid_cli, served  # noqa: F401  (re-exported for the tests here)

SHARED = ROOT.parent / "shared"
PETS = SHARED / "data" / "pets09_s2l1"
VIDEO = PETS / "vtest.avi"
GT = PETS / "gt.txt"
PERSONS = PETS / "persons.json"
HERE = os.path.dirname(os.path.abspath(__file__))


def missing_data_message() -> str:
    return f"the real test data is missing: {VIDEO} (tests/integration needs ../shared beside the repo; " \
           f"tests/unit runs without it: pytest tests/unit)"


def pytest_collection_modifyitems(session, config, items):
    """One clear error when integration tests are about to run without the data. A hook rather than
    pytest_sessionstart: with `pytest` run on tests/, this conftest is only loaded during collection."""
    if VIDEO.exists():
        return
    if any(str(item.path).startswith(HERE + os.sep) for item in items):
        raise pytest.UsageError(missing_data_message())


_PETS_STORE = pytest.StashKey[tuple]()


@pytest.fixture(scope="session")
def pets_store(request, tmp_path_factory):
    """A store holding PETS09-S2L1 frames 0-199, ingested with the default settings (real models). Cached on the
    session, so the copy of this fixture that tests/conftest.py re-exports shares the one store."""
    stash = request.config.stash
    if _PETS_STORE not in stash:
        if not VIDEO.exists():
            pytest.fail(missing_data_message(), pytrace=False)
        from reid_core.ingest import ingest
        from reid_core.store import Store

        path = tmp_path_factory.mktemp("pets_store")
        store = Store(path)
        result = ingest(VIDEO, store, camera="pets-view1", from_frame=0, to_frame=199)
        stash[_PETS_STORE] = (store, result)
    return stash[_PETS_STORE]


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
