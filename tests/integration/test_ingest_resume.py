"""Transactional ingest: SIGKILL mid-run, run again, and the store equals one clean run."""
import json
import os
import subprocess

from reid_core.store import Store
from tests.integration.conftest import VIDEO, reid_cli
from tests.integration.test_store_integrity import comparable, kill_mid_run

RANGE = ["--from-frame", "0", "--to-frame", "29"]


def _ingest(env, store):
    return subprocess.run(reid_cli() + ["ingest", str(VIDEO), "--store", str(store), "--json", *RANGE], env=env,
                          capture_output=True, text=True, timeout=600)


def test_sigkill_then_rerun_equals_clean_run(tmp_path):
    env = dict(os.environ, REID_INGEST_CHUNK="5")
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    assert _ingest(env, clean).returncode == 0

    proc = subprocess.Popen(reid_cli() + ["ingest", str(VIDEO), "--store", str(crashed), *RANGE], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = Store(crashed)
    kill_mid_run(proc, store, 10, 30)
    partial = store.runs()[0]
    assert partial.status == "partial"
    assert store.tracks() == []  # an unfinished run is invisible to queries
    assert list(store.pending(partial.run_id))

    again = _ingest(env, crashed)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["resumed"] is True
    assert comparable(Store(crashed)) == comparable(Store(clean))

    third = json.loads(_ingest(env, crashed).stdout)
    assert third["reused"] is True and third["crops"] == report["crops"]
