"""The CLI as a new user meets it: usage mistakes are one readable line (exit 2), every command and option is
documented, `reid --store DIR COMMAND` works, verify can fail a script, scores outside 0..1 are refused, and
enroll can pick the person by a stored track."""
import json
import subprocess
from pathlib import Path

import pytest

from reid_core.errors import InputError, StoreError
from tests.integration.conftest import VIDEO, reid_cli


def _reid(args, env, check=True):
    r = subprocess.run(reid_cli() + [str(a) for a in args], capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def _one_error_line(r) -> str:
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0][len("error: "):]


# Each is caught by the argument parser or before any work: nothing is imported, ingested or created.
MISTAKES = {
    "no command": ([], ["missing command", "enroll", "see `reid --help`"]),
    "missing argument": (["enroll"], ["missing argument VIDEO", "see `reid enroll --help`"]),
    "missing required option": (["enroll", VIDEO], ["missing option --name", "see `reid enroll --help`"]),
    "unknown command": (["enrol"], ["unknown command `enrol`", "did you mean `enroll`?", "see `reid --help`"]),
    "unknown subcommand": (["gallery", "shw"], ["did you mean `show`?", "see `reid gallery --help`"]),
    "missing subcommand": (["gallery"], ["missing command", "show", "see `reid gallery --help`"]),
    "unknown option": (["info", "--bogus"], ["unknown option --bogus", "see `reid info --help`"]),
    "misspelt option": (["info", "--stor", "x"], ["did you mean `--store`?"]),
    "command option before the command": (["--top-k", "3", "search-image", "x.jpg"],
                                          ["unknown option --top-k", "`reid search-image`", "after the command"]),
    "bad value type": (["identify", VIDEO, "--from-frame", "abc"],
                       ["'abc'", "--from-frame", "not a whole number", "see `reid identify --help`"]),
    "option without its value": (["info", "--store"], ["--store", "requires an argument", "reid info --help"]),
    "track and box together": (["enroll", VIDEO, "--name", "x", "--track", "3", "--at-frame", "0", "--box",
                                "1,2,3,4"], ["--track", "--box", "see `reid enroll --help`"]),
}


# --json goes last, where people add it, except after an option that lacks its value (it would be taken as the
# value) and after a group name (`reid gallery --json` is a misplaced option, which "unknown option" covers).
JSON_FIRST = {"option without its value", "missing subcommand"}
CASES = [(m, True) for m in MISTAKES] + [("no command", False), ("bad value type", False)]


@pytest.mark.parametrize("mistake,as_json", CASES, ids=[f"{m}{'' if j else ' (text)'}" for m, j in CASES])
def test_usage_mistake_is_one_line(mistake, as_json, cli_env):
    args, expected = MISTAKES[mistake]
    if as_json:
        args = ["--json"] + args if mistake in JSON_FIRST else args + ["--json"]
    r = _reid(args, cli_env, check=False)
    assert r.returncode == 2, (r.stdout, r.stderr)
    line = _one_error_line(r)
    for part in expected:
        assert part in line, line
    if as_json:
        assert json.loads(r.stdout) == {"error": line, "type": "UsageError"}
    else:
        assert r.stdout == ""
    assert not Path(cli_env["REID_STORE"]).exists()


def test_help_still_prints_and_exits_0(cli_env):
    for args in (["--help"], ["enroll", "--help"]):
        r = _reid(args, cli_env)
        assert "Usage" in r.stdout and r.stderr == ""
    assert "--track" in r.stdout and "--store" in r.stdout


def test_every_command_and_parameter_has_help():
    import typer.main

    from reid_core.cli import app

    missing = []

    def walk(command, path):
        if not (command.help or "").strip():
            missing.append(path)
        for p in command.params:
            if not (getattr(p, "help", None) or "").strip():
                missing.append(f"{path} {'/'.join(getattr(p, 'opts', None) or [p.name])}")
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, f"{path} {name}")

    root = typer.main.get_command(app)
    walk(root, "reid")
    assert {"enroll", "verify", "gallery", "train", "store"} <= set(root.commands)
    assert not missing, f"no help text: {missing}"


@pytest.mark.parametrize("args", [
    ["verify", VIDEO, "--claim", "x", "--threshold", "1.5"],
    ["identify", VIDEO, "--threshold", "-0.1"],
    ["search-image", "crop.jpg", "--min-score", "2"],
    ["adapt", "--name", "site", "--merge-similarity", "1.5"],
], ids=["verify", "identify", "search-image", "adapt"])
def test_score_outside_0_1_is_refused_before_any_work(args, cli_env):
    r = _reid(args + ["--json"], cli_env, check=False)
    assert r.returncode == 2
    line = _one_error_line(r)
    option = next(a for a in args if a in ("--threshold", "--min-score", "--merge-similarity"))
    assert option in line and "between 0 and 1" in line
    assert json.loads(r.stdout)["type"] == "InputError"
    assert not Path(cli_env["REID_STORE"]).exists()


def test_store_and_json_before_the_command(pets_store, cli_env, tmp_path):
    store, result = pets_store
    info = json.loads(_reid(["--store", store.path, "info", "--json"], cli_env).stdout)
    assert info["store"] == str(Path(store.path).resolve()) and info["counts"]["crops"] == result.crops
    assert not Path(cli_env["REID_STORE"]).exists()  # the global option beats $REID_STORE
    other = tmp_path / "other_store"
    r = _reid(["--json", "--store", other, "gallery", "list", "--store", store.path], cli_env)
    assert "pets-view1" in json.loads(r.stdout)["cameras"]  # global --json, and the command's own --store wins
    assert not other.exists()


def _segments(store):
    from reid_core.stitching import video_tracks

    return video_tracks(store, store.videos()[0].video_id, 0, 199)


def test_verify_fail_on_no_match(store_copy, cli_env):
    from reid_core.enrollment import enroll

    store = store_copy
    late = max((t for t in _segments(store) if t.frames[0] >= 100), key=len)  # someone who only arrives late
    first = enroll(store, VIDEO, "Late", 0, 199, track=late.label).frame_span[0]
    claim = ["verify", VIDEO, "--claim", "Late", "--store", store.path, "--json"]
    there = claim + ["--from-frame", first, "--to-frame", 199, "--fail-on-no-match"]
    before = claim + ["--from-frame", 0, "--to-frame", first - 15]
    hit = _reid(there, cli_env)
    assert json.loads(hit.stdout)["match"] is True
    miss = _reid(before + ["--fail-on-no-match"], cli_env, check=False)
    assert miss.returncode == 1 and json.loads(miss.stdout)["match"] is False and "error:" not in miss.stderr
    assert json.loads(_reid(before, cli_env).stdout)["match"] is False  # without the flag the answer is exit 0


def test_enroll_by_track_is_a_pick_like_a_box(store_copy, cli_env):
    from reid_core.enrollment import enroll
    from reid_core.store import Store

    store = store_copy
    # a segment in the middle of the range, so the visit can be chained on both sides of it
    seed = max((t for t in _segments(store) if t.frames[0] >= 50 and t.frames[-1] <= 150 and len(t) >= 30),
               key=lambda t: t.frames[0])
    runs = len(store.runs())
    out = json.loads(_reid(["enroll", VIDEO, "--name", "ByTrack", "--track", seed.label, "--store", store.path,
                            "--json"], cli_env).stdout)
    assert len(Store(store.path).runs()) == runs  # no --to-frame: the stored part of the video, nothing ingested
    ref = enroll(store, VIDEO, "ByBox", 0, 199, at_frame=seed.frames[0], box=seed.boxes[0])
    assert out["segments"] == ref.segments and seed.label in ref.segments and len(ref.segments) > 1
    assert out["added_crops"] == len(ref.added_keys) and out["frames"] == list(ref.frame_span)

    bad = _reid(["enroll", VIDEO, "--name", "Nobody", "--track", "999", "--to-frame", 199, "--store", store.path,
                 "--json"], cli_env, check=False)
    assert bad.returncode == 2
    line = _one_error_line(bad)
    assert "no track 999 in frames 0..199" in line and f" {seed.label}," in line
    assert json.loads(bad.stdout)["type"] == "StoreError" and Store(store.path).identity("Nobody") is None


def test_pick_by_track_label():
    from reid_core.enrollment import pick_person
    from reid_core.types import Box, Track

    def track(tid, segment, frames):
        return Track(tid, "v", "cam", [f"k{tid}.{segment}/{f}" for f in frames], list(frames),
                     [Box(10, 10, 20, 40)] * len(frames), [0.9] * len(frames), segment)

    split = [track(5, 1, range(0, 10)), track(5, 2, range(10, 20)), track(7, 0, range(0, 20))]
    assert pick_person(split, 0, 19, track="5.2") is split[1] and pick_person(split, 0, 19, track=" 7 ") is split[2]
    with pytest.raises(StoreError, match=r"may be two people.*5\.1, 5\.2"):
        pick_person(split, 0, 19, track="5")
    with pytest.raises(StoreError, match=r"no track 8 in frames 0\.\.19; the tracks there: 5\.1, 5\.2, 7"):
        pick_person(split, 0, 19, track="8")
    for bad in ("x", "5.", "-1", "5.0"):
        with pytest.raises(InputError, match="12.2"):
            pick_person(split, 0, 19, track=bad)
