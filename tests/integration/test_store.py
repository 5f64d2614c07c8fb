import numpy as np
import pytest

from reid_core.embedding import load_embedder
from reid_core.errors import StoreError
from reid_core.store import Store, validate_name


@pytest.mark.parametrize("bad", ["", "   ", "../etc/passwd", "a/b", "bob\x00", "tab\tname", "x" * 65, ".hidden",
                                 "new\nline", "semi;colon", "\u202eevil"])
def test_bad_identity_names(bad):
    with pytest.raises(StoreError):
        validate_name(bad)


@pytest.mark.parametrize("good", ["Alice", "José Núñez", "O'Brien", "p01", "Zhang Wei", "agent_007", "Mary-Jane"])
def test_good_identity_names(good):
    assert validate_name(good) == good


def test_store_contents(pets_store):
    store, result = pets_store
    assert result.run.status == "complete"
    tracks = store.tracks()
    assert sum(len(t) for t in tracks) == result.crops == store.stats()["crops"]
    t = max(tracks, key=len)
    crops = store.get_crops(t.keys, jpeg=True, feature=True)
    for c in crops:
        assert c.jpeg[:3] == b"\xff\xd8\xff"
        assert c.feature is None or abs(np.linalg.norm(c.feature) - 1) < 1e-4  # None: sampled out at ingest
        assert c.key == f"{c.video_id}/{c.frame:08d}_{int(c.key[-2:]):02d}"
        assert c.track_id == t.track_id
    feats, present = store.features_where(t.keys)
    assert feats.shape == (len(t), load_embedder().dim) and present.any()
    assert present.tolist() == [c.feature is not None for c in crops]
    assert not list(store.pending(result.run.run_id))  # replay data is dropped once complete


def test_identity_lifecycle_and_delete_removes_crops(store_copy):
    store = store_copy
    t = max(store.tracks(), key=len)
    keys = t.keys[:10]
    store.add_to_identity("Alice", keys[:5])
    store.add_to_identity("Alice", keys[5:])
    assert len(store.identity("Alice").keys) == 10
    store.rename_identity("Alice", "Alice B")
    store.add_to_identity("Carol", store.tracks()[0].keys[:2])
    merged = store.merge_identities(["Carol"], "Alice B")
    assert store.identity("Carol") is None and len(merged.keys) == 12
    before = store.stats()["crops"]
    removed = store.delete_identity("Alice B")
    assert removed == 12 and store.stats()["crops"] == before - 12
    with pytest.raises(StoreError):
        store.get_crops(keys[:1])
    assert all(k not in keys for tr in store.tracks() for k in tr.keys)


def test_failed_write_changes_nothing(store_copy):
    store = store_copy
    before = store.dump()
    with pytest.raises(RuntimeError):
        with store.write() as txn:
            store.next_track_id(txn)
            txn.put(b"zzz", b"half", db=store.db["crops"])
            raise RuntimeError("crash in the middle of a write")
    assert store.dump() == before


def test_unknown_identity_and_crop_errors(store_copy):
    with pytest.raises(StoreError, match="no identity"):
        store_copy.delete_identity("Nobody")
    with pytest.raises(StoreError, match="no crop"):
        store_copy.add_to_identity("X", ["nope/00000001_00"])
    assert store_copy.identity("X") is None


def test_annotations_cache(store_copy):
    key = store_copy.tracks()[0].keys[0]
    store_copy.put_annotations("attributes", {key: b"\x01\x02"})
    assert store_copy.get_annotations("attributes", [key, "missing"]) == {key: b"\x01\x02"}


def test_store_reopens_same_env(tmp_path):
    a, b = Store(tmp_path), Store(tmp_path)
    assert a.env is b.env


def test_delete_run_erases_and_check_passes(store_copy):
    store = store_copy
    run = store.runs()[0]
    sample = store.get_crops([k for t in store.tracks()[:3] for k in t.keys[:5]], jpeg=True, feature=True)
    assert store.check().ok
    assert store.delete_run(run.run_id) == run.crops
    assert store.stats() == {"videos": 0, "runs": 0, "crops": 0, "tracks": 0, "identities": 0}
    blob = b"".join(f.read_bytes() for f in store.path.glob("*.mdb"))
    # the tail of a JPEG is its own entropy-coded data (the head is the encoder's shared tables)
    assert any(c.feature is not None for c in sample)
    assert not any(c.jpeg[-70:-6] in blob or (c.feature is not None and c.feature.tobytes()[:64] in blob)
                   for c in sample)
    assert store.check().ok
