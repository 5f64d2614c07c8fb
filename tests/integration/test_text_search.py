"""Text search with the attribute engine over a real ingested store (PETS09-S2L1 frames 0-199)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from reid_core.attributes import ANNOTATION_KIND
from reid_core.errors import InputError, WeightsError
from reid_core.store import Store
from reid_core.text_search import TextSearcher, prepare, sample_indices, search_text
from tests.conftest import ROOT, reid_cli

sys.path.insert(0, str(ROOT / "bench"))
from text_search import evaluate, query_from_labels, track_persons  # noqa: E402

LABELS = json.loads((ROOT / "tests" / "data" / "pets_person_labels.json").read_text())["persons"]


@pytest.fixture(scope="module")
def owners(pets_store):
    from tests.integration.conftest import GT, PERSONS

    store, _ = pets_store
    return track_persons(store.tracks(), GT, PERSONS)


def test_result_shape_one_hit_per_track(pets_store):
    store, _ = pets_store
    res = search_text(store, "man in a black jacket and blue jeans", top_k=100, engine="attributes")
    tracks = {t.track_id: t for t in store.tracks()}
    out = res.to_json()
    assert list(out) == ["query", "engine", "unknown_words", "results"]
    assert out["engine"] == "attributes" and out["unknown_words"] == []
    assert len(out["results"]) == len(tracks) == len({r["track_id"] for r in out["results"]})
    scores = [r["score"] for r in out["results"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    for r in out["results"]:
        assert list(r) == ["video", "track_id", "frame", "box", "score", "caption"]
        t = tracks[r["track_id"]]
        box = t.box_at(r["frame"])  # the frame and box are one of the track's own crops
        assert box is not None and r["box"] == box.as_list()
        assert Path(r["video"]).name == "vtest.avi"
        assert r["caption"].split(",")[0] in ("man", "woman", "person") and " top" in r["caption"]
    assert len(search_text(store, "man", top_k=3, engine="attributes").hits) == 3


def test_top_hits_match_the_description(pets_store, owners):
    store, _ = pets_store
    # p08 (white hat, pale blue jacket, shoulder bag) is the only one of her kind in these frames
    res = search_text(store, "woman in a light blue jacket and jeans with a white hat and a bag", engine="attributes")
    assert owners[res.hits[0].track_id] == "p08"
    assert "white hat" in res.unknown_words  # a hat's colour is not measured, and the user is told so
    # the man in the navy-and-red jacket (p03) against "red": his track beats every all-dark one
    res = search_text(store, "person in a red jacket", top_k=100, engine="attributes")
    assert owners[res.hits[0].track_id] == "p03"


def test_label_queries_beat_chance_clearly(pets_store):
    """The benchmark's procedure on the short store: one query per actor present, built from the hand labels."""
    store, _ = pets_store
    owner = track_persons(store.tracks(), *_gt())
    present = {p for p in owner.values() if p}
    report = evaluate(store, "attributes", {p: LABELS[p] for p in sorted(present)})
    assert len(report["rows"]) >= 7
    # measured on frames 0-199: R5 1.00, mAP 0.62, chance mAP 0.26
    assert report["mAP"] >= 0.5 and report["mAP"] >= 2 * report["chance_mAP"] and report["R5"] >= 0.85


def _gt():
    from tests.integration.conftest import GT, PERSONS

    return GT, PERSONS


def test_query_from_labels():
    assert query_from_labels(LABELS["p05"]) == "woman in a red jacket and blue jeans, with long hair"
    assert query_from_labels(LABELS["p08"]) == ("woman in a light blue jacket and blue jeans, with a white hat and "
                                                "a bag")


def test_attributes_are_cached_in_the_store(store_copy, monkeypatch):
    searcher = TextSearcher(store_copy)
    first = searcher.search("man in black", top_k=5, engine="attributes")
    keys = [k for v in searcher.views() for k in v.keys]
    assert len(store_copy.get_annotations(ANNOTATION_KIND, keys)) == len(keys)

    def no_model():
        raise AssertionError("the model should not run again: everything is cached")

    monkeypatch.setattr("reid_core.text_search.load_attribute_model", no_model)
    again = TextSearcher(Store(store_copy.path)).search("man in black", top_k=5, engine="attributes")
    assert [h.to_json() for h in again.hits] == [h.to_json() for h in first.hits]


def test_prepare_fills_the_cache(store_copy):
    calls = []
    n = prepare(store_copy, progress=lambda done, total: calls.append((done, total)))
    keys = [k for v in TextSearcher(store_copy).views() for k in v.keys]
    assert n == len(keys) > 0 and len(store_copy.get_annotations(ANNOTATION_KIND, keys)) == n
    assert calls and calls[-1][0] == calls[-1][1] == n


def test_unknown_words_and_nothing_understood(pets_store):
    store, _ = pets_store
    res = search_text(store, "man with a moustache in a blue coat", engine="attributes")
    assert res.unknown_words == ("moustache",) and res.hits
    res = search_text(store, "xyzzy plugh", engine="attributes")
    assert res.hits == () and res.unknown_words == ("xyzzy", "plugh") and res.notes


def test_negation_changes_the_ranking(pets_store, owners):
    store, _ = pets_store
    with_hat = search_text(store, "someone with a hat", top_k=100, engine="attributes")
    without = search_text(store, "someone without a hat", top_k=100, engine="attributes")
    assert owners[with_hat.hits[0].track_id] == "p08"  # the only hat in these frames
    assert owners[without.hits[-1].track_id] == "p08"


def test_errors(pets_store, tmp_path, monkeypatch):
    store, _ = pets_store
    with pytest.raises(InputError):
        search_text(store, "", engine="attributes")
    with pytest.raises(InputError):
        search_text(store, "man", engine="magic")
    with pytest.raises(InputError):
        TextSearcher(store).search("man", top_k=0)
    monkeypatch.delenv("REID_CLIP_CHECKPOINT", raising=False)
    with pytest.raises(WeightsError, match="needs a CLIP checkpoint"):
        search_text(store, "man", engine="clip")
    empty = search_text(Store(tmp_path / "empty"), "man in red")
    assert empty.hits == () and any("ingest" in n for n in empty.notes)


def test_auto_without_clip_is_attributes(pets_store, monkeypatch):
    store, _ = pets_store
    monkeypatch.delenv("REID_CLIP_CHECKPOINT", raising=False)
    monkeypatch.setenv("REID_TEXT_MODEL", "no-such-text-model")  # a trained weights/text/peta-text.pt joins auto
    assert search_text(store, "man", top_k=1).engine == "attributes"


def test_sample_indices():
    assert sample_indices(5, 24) == [0, 1, 2, 3, 4]
    s = sample_indices(1000, 24)
    assert len(s) == 24 and s[0] == 0 and s[-1] == 999 and s == sorted(set(s))


def test_cli_json(pets_store, cli_env):
    store, _ = pets_store
    out = subprocess.run(reid_cli() + ["search-text", "woman in a light blue jacket with a hat", "--top-k", "4",
                                       "--engine", "attributes", "--store", str(store.path), "--json"],
                         env=cli_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert list(res) == ["query", "engine", "unknown_words", "results"] and len(res["results"]) == 4
    assert res["query"] == "woman in a light blue jacket with a hat" and res["engine"] == "attributes"
    r = res["results"][0]
    assert isinstance(r["track_id"], int) and isinstance(r["frame"], int) and len(r["box"]) == 4
    human = subprocess.run(reid_cli() + ["search-text", "woman in red, with a zorblax", "--store", str(store.path),
                                         "--explain", "--engine", "attributes"],
                           env=cli_env, capture_output=True, text=True, timeout=300)
    assert human.returncode == 0, human.stderr
    assert "not understood (ignored): zorblax" in human.stdout and "%" in human.stdout
    assert "red (any)" in human.stdout  # --explain lists each part of the query and how it was met
    bad = subprocess.run(reid_cli() + ["search-text", "  ", "--store", str(store.path), "--json"],
                         env=cli_env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and json.loads(bad.stdout)["type"] == "InputError"
