"""Time from `python app.py` to the first Identify result, as a new user meets it: a fresh store, the app started
cold (models loaded at start-up), then Identify on PETS09-S2L1 frames 0-199 through gradio_client.

    .venv/bin/python bench/app_first_result.py [--to-frame 199]

Prints the start-up time (process start -> the app answers), the Identify time (ingest of the range included) and
their sum, with the CPU."""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "data" / "pets09_s2l1" / "vtest.avi"


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--to-frame", type=int, default=199)
    args = ap.parse_args()
    from gradio_client import Client, handle_file

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, REID_STORE=str(Path(tmp) / "store"), GRADIO_SERVER_PORT=str(port))
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}/"
            while True:
                try:
                    urllib.request.urlopen(url, timeout=1)
                    break
                except OSError:
                    if proc.poll() is not None:
                        raise SystemExit("the app exited during start-up") from None
                    time.sleep(0.2)
            ready = time.perf_counter() - t0
            client = Client(url, verbose=False)
            t1 = time.perf_counter()
            summary, *_ = client.predict(video=handle_file(str(VIDEO)), from_frame="", to_frame=str(args.to_frame),
                                         api_name="/identify")
            first = time.perf_counter() - t1
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"CPU: {cpu_name()} ({os.cpu_count()} cores)")
    print(f"app start -> ready: {ready:.1f} s; Identify PETS frames 0-{args.to_frame} (ingest included): "
          f"{first:.1f} s; start -> first result: {ready + first:.1f} s")
    print(f"result: {summary}")


if __name__ == "__main__":
    main()
