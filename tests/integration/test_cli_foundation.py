import json
import subprocess

import numpy as np

from reid_core.crops import model_inputs_from_jpegs
from reid_core.embedding import load_embedder
from tests.integration.conftest import VIDEO, reid_cli


def run(args, env=None, check=True):
    r = subprocess.run(reid_cli() + args, capture_output=True, text=True, env=env, timeout=600)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_info_json(pets_store):
    store, result = pets_store
    info = json.loads(run(["info", "--store", str(store.path), "--json"]).stdout)
    assert info["counts"]["crops"] == result.crops
    assert info["models"]["osnet_x0_25_msmt17"]["found"] is True
    assert info["models"]["yolov8n_int8_openvino"]["paths"][0].endswith("yolov8n.xml")
    assert info["runs"][0]["status"] == "complete"


def test_ingest_reuses_stored_run(pets_store):
    store, result = pets_store
    out = json.loads(run(["ingest", str(VIDEO), "--to-frame", "199", "--camera", "pets-view1",
                          "--store", str(store.path), "--json"]).stdout)
    assert out["reused"] is True and out["crops"] == result.crops


def test_ingest_bad_inputs_clear_errors(tmp_path, cli_env):
    txt = tmp_path / "notes.txt"
    txt.write_text("not a video")
    r = run(["ingest", str(txt), "--json"], env=cli_env, check=False)
    assert r.returncode == 2 and "not a video" in json.loads(r.stdout)["error"]
    assert "Traceback" not in r.stderr
    r = run(["ingest", str(VIDEO), "--from-frame", "900", "--to-frame", "950"], env=cli_env, check=False)
    assert r.returncode == 2 and "outside the video" in r.stderr


def test_embed_cli_matches_library(pets_store, tmp_path):
    store, _ = pets_store
    keys = store.tracks()[0].keys[:5]
    crops = model_inputs_from_jpegs([c.jpeg for c in store.get_crops(keys)])
    np.save(tmp_path / "crops.npy", crops)
    out = json.loads(run(["embed", "--in", str(tmp_path / "crops.npy"), "--out", str(tmp_path / "f.npy"),
                          "--json"]).stdout)
    feats = np.load(tmp_path / "f.npy")
    assert out["n"] == 5 and feats.dtype == np.float32 and feats.shape == (5, load_embedder().dim)
    assert np.abs(feats - load_embedder().embed(crops)).max() < 1e-5
    np.save(tmp_path / "bad.npy", np.zeros((2, 10, 10), np.uint8))
    r = run(["embed", "--in", str(tmp_path / "bad.npy"), "--out", str(tmp_path / "g.npy")], check=False)
    assert r.returncode == 2 and "256, 128, 3" in r.stderr


def test_module_entry_point():
    import sys
    r = subprocess.run([sys.executable, "-m", "reid_core", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "ingest" in r.stdout
