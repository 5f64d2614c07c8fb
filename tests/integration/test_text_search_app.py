"""The whole app's Search tab, driven through gradio_client: text search over a store ingested from a PETS range."""
import pytest

import app
from tests.conftest import served
from tests.integration.test_text_search_ui import TABLE_HEADERS


@pytest.fixture(scope="module")
def app_url(pets_store):
    store, _ = pets_store
    with served(app.build_app(store.path)) as url:
        yield url


def test_app_search_text_endpoint(app_url, pets_store):
    from gradio_client import Client

    store, _ = pets_store
    client = Client(app_url, verbose=False)
    gallery, summary, table = client.predict("person with a hat, in a light blue jacket", "attributes", 4,
                                             api_name="/search_text")
    assert len(gallery) == 4 and all(item["image"] for item in gallery)
    assert "Engine:** attributes" in summary and "hat" in summary
    assert table["headers"] == TABLE_HEADERS and len(table["data"]) == 4
    pct = [row[1] for row in table["data"]]
    assert pct == sorted(pct, reverse=True)
    tracks = {t.track_id: t for t in store.tracks()}
    for row, item in zip(table["data"], gallery):
        assert tracks[row[4]].box_at(row[3]) is not None
        assert row[6] in item["caption"] and f"frame {row[3]}" in item["caption"]
    assert "hat" in table["data"][0][6]  # the only person with a hat in frames 0-199 (p08) comes first
