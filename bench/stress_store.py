"""Store integrity under stress, and what erasure leaves behind.

  .venv/bin/python bench/stress_store.py erase   # survivors of deleted data: old delete, LMDB compact copy, ours
  .venv/bin/python bench/stress_store.py stress [--procs 6 --kills 20 --to-frame 59]

`stress` runs --procs concurrent CLI commands (ingest / identify of the same frames, ingests of an overlapping
range) on one store with REID_INGEST_CHUNK=5, SIGKILLs a random live one --kills times (each killed command is
started again), lets them finish, and compares the store with one clean ingest key for key (timestamps and owner
fields aside), checks `reid store check`, and counts tracebacks. Prints the CPU model.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VIDEO = ROOT.parent / "shared" / "data" / "pets09_s2l1" / "vtest.avi"
REID = [str(ROOT / ".venv" / "bin" / "reid")]


from reid_core.store import Store  # noqa: E402


def cpu() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "?") + \
        f", {os.cpu_count()} cores visible"


def build(path: Path, tracks: int, per_track: int, seed: int = 0) -> Store:
    """The tests' synthetic store (JPEG-like values of 300-6000 bytes, random features), at any size."""
    from tests.test_store_integrity import synthetic_store

    return synthetic_store(path, tracks, per_track, seed)


def survivors(folder: Path, crops) -> tuple[int, int]:
    blob = b"".join(f.read_bytes() for f in folder.rglob("*") if f.is_file())
    return sum(c.jpeg[4:68] in blob for c in crops), sum(c.feature.tobytes()[:64] in blob for c in crops)


def erase(args) -> None:
    print("CPU:", cpu())
    tmp = Path(tempfile.mkdtemp())
    for label in ("plain delete (old code)", "plain delete + LMDB copy(compact=True)",
                  "delete_identity (delete + logical rebuild)"):
        folder = tmp / label.split()[0] / str(len(list(tmp.glob("*"))))
        store = build(folder, args.tracks, args.per_track)
        track = store.tracks()[0]
        store.add_to_identity("Alice", track.keys)
        crops = store.get_crops(track.keys, jpeg=True, feature=True)
        inline = sum(len(c.jpeg) < 2000 for c in crops)
        if label.startswith("delete_identity"):
            t0 = time.time()
            store.delete_identity("Alice")
            secs = time.time() - t0
            left = survivors(folder, crops)
        else:
            with store.write() as txn:
                txn.delete(b"Alice", db=store.db["identities"])
                store._delete_crops(txn, track.keys)
            secs = 0.0
            left = survivors(folder, crops)
            if "copy" in label:
                dest = tmp / "copy"
                shutil.rmtree(dest, ignore_errors=True)
                dest.mkdir()
                store.env.copy(str(dest), compact=True)
                left = survivors(dest, crops)
        print(f"{label:48s}: {left[0]:2d}/{len(crops)} JPEGs ({inline} of them small enough to sit inside a "
              f"leaf page), {left[1]:2d}/{len(crops)} features still in the files  ({secs:.2f} s)")
    big = build(tmp / "big", 200, 100, seed=1)
    size = (big.path / "data.mdb").stat().st_size
    r = big.compact()
    print(f"compaction of a {size / 2**20:.0f} MiB store of 20,000 crops: {r.seconds:.2f} s "
          f"({r.bytes_before / 2**20:.0f} -> {r.bytes_after / 2**20:.0f} MiB)")


def comparable(store: Store) -> dict:
    dump = store.dump()
    for k, v in list(dump["runs"].items()):
        rec = json.loads(v)
        for f in ("started", "finished", "owner", "heartbeat"):
            rec.pop(f, None)
        dump["runs"][k] = rec
    dump["videos"] = {k: {**json.loads(v), "added": 0} for k, v in dump["videos"].items()}
    return dump


def stress(args) -> None:
    print("CPU:", cpu())
    tmp = Path(tempfile.mkdtemp())
    env = dict(os.environ, REID_INGEST_CHUNK="5", REID_STORE=str(tmp / "store"))
    rng_ = ["--from-frame", "0", "--to-frame", str(args.to_frame)]
    t0 = time.time()
    subprocess.run(REID + ["ingest", str(VIDEO), *rng_, "--store", str(tmp / "clean"), "--json"], env=env,
                   check=True, capture_output=True)
    print(f"clean ingest of frames 0-{args.to_frame}: {time.time() - t0:.1f} s")
    commands = [["ingest", str(VIDEO), *rng_, "--json"], ["identify", str(VIDEO), *rng_, "--json"]]
    rnd = random.Random(args.seed)
    logs = tmp / "logs"
    logs.mkdir()
    n = 0

    def spawn(cmd):
        nonlocal n
        n += 1
        err = open(logs / f"{n:03d}.err", "w")
        return subprocess.Popen(REID + cmd, env=env, stdout=subprocess.DEVNULL, stderr=err), cmd, err

    live = [spawn(commands[i % 2]) for i in range(args.procs)]
    kills, mid_write, rcs, t0 = 0, 0, [], time.time()
    watch = None
    while live:
        time.sleep(rnd.uniform(2.0, 10.0))  # model loading takes ~10-20 s: kill during writes too
        for item in list(live):
            if item[0].poll() is not None:
                live.remove(item)
                rcs.append(item[0].returncode)
                item[2].close()
        if kills < args.kills and live:
            victim = rnd.choice(live)
            if watch is None and (tmp / "store" / "data.mdb").exists():
                watch = Store(tmp / "store")
            writing = {r.owner.get("pid") for r in (watch.runs() if watch else []) if r.status == "partial"}
            mid_write += victim[0].pid in writing  # killed while it owned the partial run, between chunk commits
            victim[0].send_signal(signal.SIGKILL)
            victim[0].wait()
            victim[2].close()
            live.remove(victim)
            kills += 1
            live.append(spawn(victim[1]))
    store = Store(tmp / "store")
    same = comparable(store) == comparable(Store(tmp / "clean"))
    check = subprocess.run(REID + ["store", "check", "--json"], env=env, capture_output=True, text=True)
    tracebacks = sum("Traceback" in f.read_text() for f in logs.glob("*.err"))
    print(f"{args.procs} processes, {kills} SIGKILLs ({mid_write} of the run's writer mid-run), {n} commands started, "
          f"{time.time() - t0:.0f} s: "
          f"exit codes of the unkilled {sorted(set(rcs))} ({len(rcs)} commands), store equals clean run: {same}, "
          f"`reid store check` exit {check.returncode}, tracebacks: {tracebacks}, runs {len(store.runs())}, "
          f"tracks {len(store.tracks())}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("erase")
    e.add_argument("--tracks", type=int, default=6)
    e.add_argument("--per-track", type=int, default=30)
    s = sub.add_parser("stress")
    s.add_argument("--procs", type=int, default=6)
    s.add_argument("--kills", type=int, default=20)
    s.add_argument("--to-frame", type=int, default=59)
    s.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    {"erase": erase, "stress": stress}[a.cmd](a)
