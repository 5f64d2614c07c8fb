"""How long one frame takes through reid_core.video.FrameReader, against decoding from frame 0 (the old read_frame).

    .venv/bin/python bench/frame_seek.py [VIDEO] [--frame 790] [--random 30]

cold: a fresh reader (opens the file, checks once that seeking is exact, seeks); warm: the same frame again (the
frame cache); next: the following frame (one decode on the open capture); random: mean over frames in random order
with the frame cache emptied before each (captures stay open, as in the app).
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reid_core.video import FrameReader, probe, read_frames  # noqa: E402

DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "pets09_s2l1" / "vtest.avi"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", nargs="?", default=str(DEFAULT_VIDEO))
    ap.add_argument("--frame", type=int, default=790)
    ap.add_argument("--random", type=int, default=30, help="frames read in random order")
    args = ap.parse_args()
    info = probe(args.video)
    n = args.frame
    print(f"{Path(args.video).name}: {info.frame_count} frames {info.width}x{info.height} @ {info.fps:g} fps; "
          f"CPU {cpu_name()}")
    print(f"decode from 0 (old read_frame), frame {n}: {ms(lambda: next(read_frames(args.video, n, n))):8.1f} ms")
    reader = FrameReader()
    print(f"FrameReader cold, frame {n}:             {ms(lambda: reader.read(args.video, n)):8.1f} ms  "
          f"(seeking exact: {reader.seek_is_exact(args.video)})")
    print(f"FrameReader warm, frame {n} again:       {ms(lambda: reader.read(args.video, n)):8.3f} ms")
    print(f"FrameReader next, frame {n + 1}:            {ms(lambda: reader.read(args.video, n + 1)):8.1f} ms")
    frames = random.Random(0).sample(range(info.frame_count), min(args.random, info.frame_count))
    times = []
    for f in frames:
        reader._frames.clear()  # measure decoding, not the cache
        reader._frame_bytes = 0
        times.append(ms(lambda f=f: reader.read(args.video, f)))
    times.sort()
    print(f"FrameReader random ({len(frames)} frames):       {sum(times) / len(times):8.1f} ms mean, "
          f"{times[len(times) // 2]:.1f} median, {times[-1]:.1f} max   {reader.stats}")


if __name__ == "__main__":
    main()
