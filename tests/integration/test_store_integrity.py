"""Store integrity: erasure that erases, counted membership, damaged/full stores give one line, concurrent and
killed writers end in the store one clean run gives.

The unit tier (synthetic stores, no models) runs first; the integration tier drives the real CLI on frames 0-29 of
the PETS clip with REID_INGEST_CHUNK=5 and compares against one clean in-process ingest."""
from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from reid_core import store_env
from reid_core.errors import StoreError
from reid_core.store import CropMeta, RunRecord, Store, VideoRecord, crop_key
from tests.integration.conftest import VIDEO, reid_cli

VID = "f" * 64


# ---- synthetic stores ------------------------------------------------------------------------------------------
def _fake_jpeg(rng: np.random.Generator, n: int) -> bytes:
    return b"\xff\xd8\xff\xe0" + rng.bytes(n) + b"\xff\xd9"


def synthetic_store(path: Path, tracks: int = 6, per_track: int = 30, seed: int = 0) -> Store:
    """A store with one complete run: `tracks` tracks of `per_track` crops, JPEG-like values of 300-6000 bytes
    (so both values kept inside leaf pages and values on overflow pages occur) and random 512-d features."""
    rng = np.random.default_rng(seed)
    store = Store(path)
    run = RunRecord("r" * 16, VID, 0, per_track - 1, 1, {"embedder": "osnet_x0_25_msmt17"}, status="complete",
                    next_frame=per_track)

    def fill(txn):
        store.put_video(txn, VideoRecord(VID, "/x.avi", "cam", 25.0, per_track, 768, 576))
        for t in range(tracks):
            tid = store.next_track_id(txn)
            run.track_map[str(t)] = tid
            keys = []
            for f in range(per_track):
                key = crop_key(VID, f, t)
                feat = rng.standard_normal(512).astype(np.float32)
                store.put_crop(txn, key, _fake_jpeg(rng, int(rng.integers(300, 6000))),
                               CropMeta(VID, "cam", f, [1, 2, 3, 4], 0.9, tid, run.run_id), feat / np.linalg.norm(feat))
                keys.append(key)
            store.append_to_track(txn, tid, VID, "cam", run.run_id, keys)
            run.crops += per_track
        store.put_run(txn, run)

    store.transact(fill)
    return store


def _folder_bytes(path: Path) -> bytes:
    return b"".join(f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file())


def test_delete_identity_erases_bytes_from_the_files(tmp_path):
    store = synthetic_store(tmp_path / "s")
    alice = store.tracks()[0]
    store.add_to_identity("Alice", alice.keys)
    store.add_to_identity("Bob", store.tracks()[1].keys)
    crops = store.get_crops(alice.keys, jpeg=True, feature=True)
    store.put_annotations("attributes", {k: b"ATTR-" + k.encode() for k in alice.keys})
    before = _folder_bytes(store.path)
    assert all(c.jpeg[4:68] in before for c in crops)  # the probe finds them while they are stored

    assert store.delete_identity("Alice") == len(alice.keys)
    blob = _folder_bytes(store.path)
    jpeg_left = sum(c.jpeg[4:68] in blob for c in crops)  # 64 random bytes: no false hits
    feat_left = sum(c.feature.tobytes()[:64] in blob for c in crops)
    assert (jpeg_left, feat_left) == (0, 0)
    assert b"ATTR-" not in blob and b"Alice" not in blob
    assert store.check().ok
    assert len(store.identity("Bob").keys) == 30 and len(store.tracks()) == 5


def test_membership_is_counted(tmp_path):
    store = synthetic_store(tmp_path / "s")
    track = store.tracks()[0]
    store.add_to_identity("Alice", track.keys)  # 30 crops
    store.add_to_identity("Bob", track.keys[10:])  # 20 of the same crops
    assert store.delete_identity("Bob") == 0  # every one of Bob's crops is Alice's too
    assert store.identity("Alice").keys == track.keys
    assert len(store.get_crops(track.keys)) == 30
    store.add_to_identity("Carol", track.keys[:5] + store.tracks()[1].keys[:5])
    assert store.delete_identity("Alice") == 25  # Carol keeps her 5 of them
    assert len(store.get_crops(store.identity("Carol").keys)) == 10
    assert store.check().ok


def test_compaction_reaches_other_store_objects_and_processes(tmp_path):
    a = synthetic_store(tmp_path / "s", tracks=2)
    b = Store(tmp_path / "s")
    before = b.dump()
    subprocess.run(reid_cli() + ["store", "compact", "--store", str(a.path), "--json"], check=True,
                   capture_output=True, timeout=120)
    assert b.dump() == before  # reopened onto the new file, same content
    a.add_to_identity("Late", a.tracks()[0].keys[:3])  # written after another process swapped the file
    out = subprocess.run([sys.executable, "-c", "import sys; from reid_core.store import Store; "
                          "print(Store(sys.argv[1]).identity('Late').keys)", str(a.path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert len(eval(out.stdout)) == 3  # the write went into the file others open, not the unlinked one


def _cli(args, env=None, timeout=300):
    return subprocess.run(reid_cli() + args, capture_output=True, text=True, env=env, timeout=timeout)


def _one_line_error(r, fragment: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])  # 2, not -7 (SIGBUS) or -11
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], r.stderr


def test_check_finds_inconsistencies(tmp_path):
    store = synthetic_store(tmp_path / "s", tracks=2)
    r = _cli(["store", "check", "--store", str(store.path), "--json"])
    assert r.returncode == 0 and json.loads(r.stdout)["counts"]["crops"] == 60
    key = store.tracks()[0].keys[3]
    with store.write() as txn:
        txn.delete(key.encode(), db=store.db["feats"])
    report = store.check()
    assert report.problems == [f"crop {key}: feature and metadata do not match (one is missing)"]
    _one_line_error(_cli(["store", "check", "--store", str(store.path)]), "1 problem")


def test_truncated_store_is_refused_before_mapping(tmp_path):
    store = synthetic_store(tmp_path / "s")
    data = store.path / "data.mdb"
    with open(data, "r+b") as f:
        f.truncate(data.stat().st_size // 2)
    for args in (["store", "check"], ["info"], ["gallery", "list"]):
        _one_line_error(_cli(args + ["--store", str(store.path)]), "store damaged")
    with pytest.raises(StoreError, match="truncated"):
        store_env.read_meta(data)


@pytest.mark.parametrize("where", ["meta", "data"])
def test_garbage_page_gives_one_line(tmp_path, where):
    store = synthetic_store(tmp_path / "s")
    data = store.path / "data.mdb"
    psize = store_env.read_meta(data).page_size
    size = data.stat().st_size
    rng = np.random.default_rng(1)
    with open(data, "r+b") as f:
        if where == "meta":  # both meta pages: nothing says where the trees are
            f.write(rng.bytes(2 * psize))
        else:  # every page of the last 16, where the newest branch and leaf pages of the trees are
            for page in range(size // psize - 16, size // psize):
                f.seek(page * psize + 16)  # keep the page header, wreck the nodes
                f.write(rng.bytes(psize - 16))
    r = _cli(["store", "check", "--store", str(store.path)])
    _one_line_error(r, "store damaged" if where == "meta" else "problem")


def test_map_grows_on_demand(tmp_path, monkeypatch):
    monkeypatch.setattr(store_env, "MIN_MAP", 1 << 20)
    store = Store(tmp_path / "s")
    assert store.env.info()["map_size"] == 1 << 20
    blob = os.urandom(256 << 10)
    for i in range(40):  # 10 MiB through a 1 MiB map
        store.put_annotations("x", {f"k{i:03d}": blob})
    assert store.env.info()["map_size"] >= 10 << 20
    assert len(store.get_annotations("x", [f"k{i:03d}" for i in range(40)])) == 40


def test_map_limit_full_is_clear_and_loses_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("REID_STORE_MAP_MAX", str(4 << 20))
    monkeypatch.setattr(store_env, "MIN_MAP", 1 << 20)
    store = synthetic_store(tmp_path / "s", tracks=2)
    before = store.dump()
    with pytest.raises(StoreError, match="store full") as err:
        store.put_annotations("x", {f"k{i}": os.urandom(1 << 20) for i in range(6)})
    assert "\n" not in str(err.value)
    assert store.dump() == before


def test_address_space_limit_opens(tmp_path):
    store = synthetic_store(tmp_path / "s", tracks=2)

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # the old fixed 1 TiB map could never open

    r = subprocess.run(reid_cli() + ["store", "check", "--store", str(store.path)], capture_output=True, text=True,
                       preexec_fn=limit, timeout=120)
    assert r.returncode == 0, r.stderr


def _write_until_error(store: Store) -> str:
    key = store.tracks()[0].keys[0]
    with pytest.raises(StoreError) as err:
        for i in range(200):
            store.put_annotations(f"k{i:03d}", {key: os.urandom(128 << 10)})
    return str(err.value)


def test_disk_full_on_tmpfs(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {r.stderr.strip()}")
    try:
        store = synthetic_store(mnt / "s", tracks=1, per_track=10)
        store.put_annotations("first", {store.tracks()[0].keys[0]: b"1"})
        before = store.dump()
        msg = _write_until_error(store)
        assert "disk is full" in msg and "\n" not in msg, msg
        # the write that failed is gone, everything before it is there, in this process and in a fresh one
        assert {k: v for k, v in store.dump().items() if k != "annotations"} == \
            {k: v for k, v in before.items() if k != "annotations"}
        out = subprocess.run(reid_cli() + ["store", "check", "--store", str(store.path), "--json"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["counts"]["crops"] == 10
    finally:
        shared = store_env._envs.pop(str((mnt / "s").resolve()), None)
        if shared is not None:
            shared._close()
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_file_size_limit_is_named(tmp_path):
    """The same failure without root: RLIMIT_FSIZE makes the store's file unable to grow."""
    store = synthetic_store(tmp_path / "s", tracks=1, per_track=10)
    code = ("import os, signal, sys, resource\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "size = os.path.getsize(os.path.join(sys.argv[1], 'data.mdb'))\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (size + (1 << 20), size + (1 << 20)))\n"
            "from reid_core.store import Store\n"
            "from reid_core.errors import StoreError\n"
            "s = Store(sys.argv[1])\n"
            "key = s.tracks()[0].keys[0]\n"
            "try:\n"
            "    for i in range(100): s.put_annotations(f'k{i}', {key: os.urandom(256 << 10)})\n"
            "except StoreError as e: print(e)\n")
    before = store.dump()
    r = subprocess.run([sys.executable, "-c", code, str(store.path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "cannot write the store" in r.stdout and "size limit" in r.stdout, r.stdout
    after = Store(store.path).dump()
    assert {k: v for k, v in after.items() if k != "annotations"} == \
        {k: v for k, v in before.items() if k != "annotations"}


# ---- claims and leases (no models) -----------------------------------------------------------------------------
def test_owner_liveness():
    from reid_core import ingest as ing

    now = time.time()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    me = ing._new_owner()
    run = RunRecord("x", VID, 0, 9, 1, {}, owner=me, heartbeat=now)
    assert not ing.owner_alive(run)  # this process, but no ingest of its holds that token any more
    ing._ACTIVE.add(me["token"])
    try:
        assert ing.owner_alive(run)
        assert not ing.owner_alive(run, now=now + ing.lease_seconds() + 1)  # lease expired
    finally:
        ing._ACTIVE.discard(me["token"])
    run.owner = {**me, "pid": dead.pid}
    assert not ing.owner_alive(run)  # dead pid on this host: stale at once, whatever the lease says
    run.owner = {**me, "host": "elsewhere", "pid": 1}
    assert ing.owner_alive(run) and not ing.owner_alive(run, now=now + ing.lease_seconds() + 1)


# ---- integration: the real CLI on frames 0-29 ------------------------------------------------------------------
CHUNK = "5"
RANGE = ["--from-frame", "0", "--to-frame", "29"]


def comparable(store: Store) -> dict:
    """Store.dump() without the fields that differ between equal runs (timestamps, owners)."""
    dump = store.dump()
    runs = {}
    for k, v in dump["runs"].items():
        rec = json.loads(v)
        for f in ("started", "finished", "owner", "heartbeat"):
            rec.pop(f, None)
        runs[k] = rec
    dump["runs"] = runs
    dump["videos"] = {k: {**json.loads(v), "added": 0} for k, v in dump["videos"].items()}
    return dump


def _no_duplicates(store: Store) -> None:
    seen: dict[str, int] = {}
    for t in store.tracks():
        for k in t.keys:
            assert k not in seen, f"crop {k} is in tracks {seen[k]} and {t.track_id}"
            seen[k] = t.track_id
    assert len(seen) == store.stats()["crops"]


@pytest.fixture(scope="module")
def clean30(tmp_path_factory):
    """One clean in-process ingest of frames 0-29 (chunks of 5): the reference every concurrent run must equal."""
    from reid_core.ingest import ingest

    old = os.environ.get("REID_INGEST_CHUNK")
    os.environ["REID_INGEST_CHUNK"] = CHUNK
    try:
        store = Store(tmp_path_factory.mktemp("clean30"))
        ingest(VIDEO, store, from_frame=0, to_frame=29)
    finally:
        if old is None:
            os.environ.pop("REID_INGEST_CHUNK")
        else:
            os.environ["REID_INGEST_CHUNK"] = old
    return store


@pytest.fixture
def chunk_env(tmp_path):
    return dict(os.environ, REID_INGEST_CHUNK=CHUNK, REID_STORE=str(tmp_path / "store"))


def _spawn(args, env):
    return subprocess.Popen(reid_cli() + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(procs, timeout=300):
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        assert "Traceback" not in stderr, stderr[-3000:]
        out.append((p.returncode, stdout, stderr))
    return out


def kill_mid_run(proc: subprocess.Popen, store: Store, lo: int, hi: int, timeout: float = 300) -> int:
    """SIGKILL the ingest `proc` once its (only) run has committed up to a frame in [lo, hi); returns that frame."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        runs = store.runs()
        if runs and runs[0].status == "partial" and lo <= runs[0].next_frame < hi:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert store.runs()[0].status == "partial"
            return runs[0].next_frame
        time.sleep(0.02)
    raise AssertionError("the ingest finished before it could be killed")


def test_sigkill_then_concurrent_commands_resume_once(clean30, chunk_env, tmp_path):
    """An ingest killed mid-run, then three commands needing the same footage at once (two ingests and an
    identify): one resumes the dead run, the others wait for it and reuse it; the store equals one clean run."""
    proc = subprocess.Popen(reid_cli() + ["ingest", str(VIDEO), *RANGE], env=chunk_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = Store(tmp_path / "store")
    kill_mid_run(proc, store, 5, 30)

    procs = [_spawn(["ingest", str(VIDEO), *RANGE, "--json"], chunk_env) for _ in range(2)]
    procs.append(_spawn(["identify", str(VIDEO), *RANGE, "--json"], chunk_env))
    results = _finish(procs)
    assert all(rc == 0 for rc, _, _ in results), [e[-500:] for _, _, e in results]
    reports = [json.loads(o) for _, o, _ in results[:2]]
    # the identify may be the one that resumed: then both ingests reuse
    assert sum(r["resumed"] for r in reports) <= 1 and sum(not r["reused"] for r in reports) <= 1
    assert len(json.loads(results[2][1])["tracks"]) == len(clean30.tracks())
    assert comparable(store) == comparable(clean30)
    _no_duplicates(store)


def test_enroll_waits_for_overlapping_ingest_and_reuses_it(clean30, tmp_path, monkeypatch):
    """The filed case "ingest 0-99 with enroll 0-49 at once" (here 0-29 and 0-14), in one process as the app
    runs it: the enroll's ensure_ingested(0-14) waits and does not become a second run over the same frames."""
    from reid_core.ingest import (
        ensure_ingested,  # what enroll, verify and identify call first
        ingest,
    )

    monkeypatch.setenv("REID_INGEST_CHUNK", CHUNK)
    store = Store(tmp_path / "store")
    errors = []

    def run_ingest():
        try:
            ingest(VIDEO, store, from_frame=0, to_frame=29)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    worker = threading.Thread(target=run_ingest)
    worker.start()
    deadline = time.time() + 60
    while not store.runs() and time.time() < deadline:
        time.sleep(0.01)  # claimed: from now on the enroll has to wait for it
    ensure_ingested(store, VIDEO, 0, 14)
    worker.join(120)
    assert not errors
    assert len(store.runs()) == 1
    dump, ref = comparable(store), comparable(clean30)
    assert dump == ref
    _no_duplicates(store)


def test_bad_file_rolls_back_and_blocks_nothing(tmp_path, monkeypatch):
    from reid_core.errors import VideoError
    from reid_core.ingest import ingest

    monkeypatch.setenv("REID_INGEST_CHUNK", CHUNK)
    bad = tmp_path / "cut.avi"
    with open(VIDEO, "rb") as f:
        bad.write_bytes(f.read(400_000))  # the header still claims 795 frames; about 26 decode
    store = Store(tmp_path / "store")
    with pytest.raises(VideoError, match="decoding stopped"):
        ingest(bad, store, from_frame=0, to_frame=59)
    assert store.runs() == [] and store.stats()["crops"] == 0 and not store.dump()["pending"]
    result = ingest(bad, store, from_frame=0, to_frame=9)  # nothing partial is left in the way
    assert result.run.status == "complete" and not result.resumed


def test_double_click_in_one_process(clean30, tmp_path, monkeypatch):
    from reid_core.ingest import ingest

    monkeypatch.setenv("REID_INGEST_CHUNK", CHUNK)
    store = Store(tmp_path / "store")
    results, errors = [], []

    def click():
        try:
            results.append(ingest(VIDEO, store, from_frame=0, to_frame=29))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and sorted(r.reused for r in results) == [False, True]
    assert comparable(store) == comparable(clean30)


# Ten app clients ingest the same footage at once (the filed case: 26 tracks instead of 13): the store ends with one
# run, every crop in exactly one track, the same tracks and crops as one clean ingest.
CLIENTS = 10


@pytest.mark.slow
def test_ten_app_clients_ingest_the_same_range_once(clean30, tmp_path, monkeypatch):
    from gradio_client import Client, handle_file

    import app

    monkeypatch.setenv("REID_INGEST_CHUNK", CHUNK)
    store = Store(tmp_path / "store")
    demo = app.build_app(store.path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # As many workers as clients: every request runs at once (the app itself ships with a limit of 2).
    demo.queue(default_concurrency_limit=CLIENTS).launch(server_name="127.0.0.1", server_port=port,
                                                          prevent_thread_lock=True, quiet=True)
    try:
        url = f"http://127.0.0.1:{port}/"

        def client(_):
            return Client(url, verbose=False).predict(handle_file(str(VIDEO)), "", 0, 29, 1, api_name="/ingest")

        with ThreadPoolExecutor(CLIENTS) as pool:
            messages = list(pool.map(client, range(CLIENTS)))
    finally:
        demo.close()
    assert all("Stored" in m or "Already stored" in m for m in messages), messages
    assert sum(m.startswith("**Stored") for m in messages) == 1, messages
    assert len(store.runs()) == 1 and store.runs()[0].status == "complete"
    _no_duplicates(store)
    ref = {tuple(t.keys) for t in clean30.tracks()}
    assert {tuple(t.keys) for t in store.tracks()} == ref
