"""Transactional ingest: SIGKILL mid-run, run again, and the store equals one clean run."""
import json
import os
import signal
import subprocess
import time

from reid_core.store import Store
from tests.conftest import VIDEO, reid_cli
from tests.test_store_integrity import comparable

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
    deadline = time.time() + 300
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        runs = store.runs()
        if runs and 10 <= runs[0].next_frame < 30 and runs[0].status == "partial":
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed_at = runs[0].next_frame
            break
        time.sleep(0.05)
    assert killed_at is not None, "the ingest finished before it could be killed"
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
