"""The Search-by-text UI part: prompt builder, and the search endpoint called through gradio_client."""
import socket

import pytest

from reid_core.text_query import parse
from ui.search_text import TABLE_HEADERS, compose_prompt


def explicit(text: str) -> set:
    out = set()
    for c in parse(text).constraints:
        if c.implied:
            continue
        out.add((c.target, c.positive) if c.kind == "attribute" else (c.target, c.text.split()[-2], c.positive))
    return out


def test_prompt_builds_up_from_tags():
    assert compose_prompt() == ""
    assert compose_prompt(gender="woman") == "woman"
    p = compose_prompt(gender="woman", upper_colour="red", upper_garment="jacket")
    assert p == "woman in a red jacket"
    p = compose_prompt(gender="woman", upper_colour="red", upper_garment="jacket", lower_colour="blue",
                       lower_garment="jeans", carrying="a bag", hat="no hat")
    assert p == "woman in a red jacket and blue jeans, with a bag, without a hat"
    assert explicit(p) == {("male", False), ("upper", "red", True), ("lower", "blue", True), ("bag", True),
                           ("hat", False)}


@pytest.mark.parametrize("carrying,expected", [("a backpack", {("backpack", True)}), ("no bag", {("bag", False)}),
                                               ("nothing", {("bag", False), ("backpack", False)})])
def test_every_tag_is_understood(carrying, expected):
    assert explicit(compose_prompt(carrying=carrying)) == expected


def test_free_text_is_appended_and_reported():
    p = compose_prompt(gender="man", hair="long hair", extra="green scarf")
    assert p == "man, with long hair, green scarf"
    assert "green scarf" in parse(p).unknown_words


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(pets_store):
    import gradio as gr

    from ui.search_text import build

    store, _ = pets_store
    with gr.Blocks() as demo:
        with gr.Tab("Search"):
            build(lambda: store)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_search_endpoint_via_gradio_client(app_url, pets_store):
    from gradio_client import Client

    store, _ = pets_store
    client = Client(app_url, verbose=False)
    gallery, summary, table = client.predict("woman in a light blue jacket with a hat and a frobnitz", "attributes", 5,
                                             api_name="/search_text")
    assert len(gallery) == 5
    assert all(item["caption"].split("%")[0].isdigit() and " · vtest.avi frame " in item["caption"]
               for item in gallery)
    assert all(item["image"] for item in gallery)
    assert "Not understood (ignored):** frobnitz" in summary and "Engine:** attributes" in summary
    assert table["headers"] == TABLE_HEADERS and len(table["data"]) == 5
    pct = [row[1] for row in table["data"]]
    assert pct == sorted(pct, reverse=True) and all(0 <= p <= 100 for p in pct)
    tracks = {t.track_id: t for t in store.tracks()}
    for row in table["data"]:
        assert tracks[row[4]].box_at(row[3]) is not None  # the frame shown is one of the track's own
        assert row[6] in " ".join(i["caption"] for i in gallery)  # captions shown under the pictures


def test_search_endpoint_reports_problems(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    gallery, summary, _ = client.predict("", "attributes", 5, api_name="/search_text")
    assert gallery == [] and "Describe someone first" in summary
    gallery, summary, _ = client.predict("man", "clip", 5, api_name="/search_text")
    assert gallery == [] and "needs a CLIP checkpoint" in summary
