"""`evaluate_market` end to end on a synthetic Market-1501 folder (it embeds the pictures with the real default
model from ../shared), and `reid eval --features` through the real CLI (three CLI processes: ~15 s, too slow for
the unit tier). The dataset readers themselves: tests/unit/test_eval_datasets.py."""
import json
import subprocess

import cv2
import numpy as np
import pytest

from reid_core.evaluation import datasets as ds
from reid_core.evaluation.runner import EvalSettings, evaluate_features
from tests.conftest import reid_cli
from tests.unit.test_eval_datasets import make_market, tiny_features


def test_market_folder_end_to_end(tmp_path):
    from reid_core.evaluation.runner import DiskCache, evaluate_market

    root = make_market(tmp_path / "market")
    rng = np.random.default_rng(0)
    for p in sorted(root.rglob("*.jpg")):  # distinct pictures, so the features differ
        cv2.imwrite(str(p), rng.integers(0, 255, (128, 64, 3), dtype=np.uint8))
    report = evaluate_market(root, EvalSettings(tracks="tracker"), tmp_path / "out", cache=DiskCache(None),
                             save_features=tmp_path / "f.npz")
    assert report.dataset.kind == "market" and report.dataset.num_query == 2 and report.dataset.num_gallery == 3
    assert report.settings.tracks == "none" and any("need video" in n for n in report.notes)
    assert any("junk" in n for n in report.notes)
    assert report.rank.num_query == 2
    again = evaluate_features(tmp_path / "f.npz")
    assert again.rank.mAP == pytest.approx(report.rank.mAP, nan_ok=True)


def test_cli_scores_a_feature_file(tmp_path):
    qf, gf, q, g = tiny_features()
    path = ds.save_features(tmp_path / "f.npz", qf, gf, q, g)
    out = tmp_path / "out"
    r = subprocess.run(reid_cli() + ["eval", "--features", str(path), "--out", str(out), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    for key in ("mAP", "R1", "R5", "R10", "mINP"):
        assert isinstance(report[key], float)
    assert report["mAP"] == pytest.approx(0.75)
    assert report["dataset"]["kind"] == "features"
    assert (out / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    human = subprocess.run(reid_cli() + ["eval", "--features", str(path), "--out", str(out), "--aqe", "1", "--dba",
                                         "1", "--rerank"], capture_output=True, text=True, timeout=120)
    assert human.returncode == 0, human.stderr
    assert "mAP" in human.stdout and "AQE k=1" in human.stdout and "DBA k=1" in human.stdout
    assert "re-rank k1=20" in human.stdout
    bad = subprocess.run(reid_cli() + ["eval", "--features", str(path), "--mot", str(tmp_path), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "exactly one" in json.loads(bad.stdout)["error"]
