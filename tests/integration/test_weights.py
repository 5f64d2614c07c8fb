import shutil

import pytest

from reid_core import weights
from reid_core.errors import WeightsError


def test_default_models_resolve_from_shared():
    files = weights.resolve("osnet_x0_25_msmt17")
    assert files.path.name == "osnet_x0_25_msmt17.pth"
    assert weights.sha256_of(files.path) == weights.manifest()["osnet_x0_25_msmt17"]["files"][0]["sha256"]
    det = weights.resolve("yolov8n_int8_openvino")
    assert {p.name for p in det.paths} == {"yolov8n.xml", "yolov8n.bin", "metadata.yaml"}


def test_env_dir_is_searched_first(tmp_path, monkeypatch):
    src = weights.resolve("osnet_x0_25_market1501").path
    shutil.copy(src, tmp_path / src.name)
    monkeypatch.setenv("REID_WEIGHTS_DIR", str(tmp_path))
    assert weights.resolve("osnet_x0_25_market1501").path == tmp_path / src.name


def test_corrupt_file_in_first_dir_falls_back_but_is_reported(tmp_path, monkeypatch):
    (tmp_path / "osnet_x0_25_market1501.pth").write_bytes(b"not weights")
    monkeypatch.setenv("REID_WEIGHTS_DIR", str(tmp_path))
    found = weights.resolve("osnet_x0_25_market1501")
    assert found.root != tmp_path  # the good copy in ../shared wins over the corrupt one


def test_missing_file_error_names_file_dirs_and_source(tmp_path, monkeypatch):
    monkeypatch.setenv("REID_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setattr(weights, "search_dirs", lambda: [tmp_path, tmp_path / "nowhere"])
    with pytest.raises(WeightsError) as err:
        weights.resolve("osnet_x0_25_msmt17")
    msg = str(err.value)
    assert "osnet_x0_25_msmt17.pth" in msg
    assert str(tmp_path) in msg and str(tmp_path / "nowhere") in msg
    assert "github.com/" in msg and "sha256" in msg


def test_wrong_hash_is_named(tmp_path, monkeypatch):
    (tmp_path / "osnet_x0_25_msmt17.pth").write_bytes(b"x" * 10)
    monkeypatch.setattr(weights, "search_dirs", lambda: [tmp_path])
    with pytest.raises(WeightsError, match="wrong sha256"):
        weights.resolve("osnet_x0_25_msmt17")


def test_unknown_model():
    with pytest.raises(WeightsError, match="unknown model"):
        weights.resolve("resnet9000")


def test_manifest_has_source_and_licence_for_every_model():
    for name, entry in weights.manifest().items():
        assert entry["source"] and entry["licence"], name
        for f in entry["files"]:
            assert len(f["sha256"]) == 64
