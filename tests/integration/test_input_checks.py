"""The CLI's error contract for every probe a tester filed (one clear line, exit code 2, no traceback, store
unchanged). No models run here: every probe is refused before any work starts, which is the point. The checks
behind it, without the CLI: tests/unit/test_input_checks.py."""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.integration.conftest import VIDEO, reid_cli
from tests.unit.test_input_checks import png, synthetic_store


# ---- the CLI: each filed probe ------------------------------------------------------------------------------------
def _no_nan(text):
    raise ValueError(f"invalid JSON constant {text}")


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_checks")
    store = synthetic_store(root / "store")
    (root / "huge.png").write_bytes(png(20000, 20000))
    (root / "crop.png").write_bytes(png(400, 200))
    return store, root


PROBES = {
    "negative threshold": (["verify", "{video}", "--claim", "alice", "--threshold", "-1"], "between 0 and 1"),
    "NaN threshold": (["identify", "{video}", "--threshold", "nan"], "between 0 and 1"),
    "huge image": (["search-image", "{root}/huge.png"], "MP"),
    "top-k 0": (["search-image", "{root}/crop.png", "--top-k", "0"], "--top-k"),
    "negative frame": (["search-image", "{root}/crop.png", "--from-frame", "-3"], "--from-frame"),
    "export to a missing folder": (["identify", "{video}", "--export", "{root}/no/such/out.csv"], "does not exist"),
    "unknown as a name": (["enroll", "{video}", "--name", "Unknown"], "reserved"),
    "look-alike name": (["enroll", "{video}", "--name", "AIice"], "looks like the existing identity 'alice'"),
    "mixed-script name": (["gallery", "rename", "bob", "\u0430lice"], "mixes scripts"),
    "markdown camera": (["ingest", "{video}", "--camera", "![x](https://evil.example/p.png)"], "camera name"),
    "bare reid": ([], "missing command"),
    "missing argument": (["enroll"], "missing argument VIDEO"),
    "typo": (["enrol"], "did you mean `enroll`?"),
    "command option first": (["--top-k", "3", "search-image", "{root}/crop.png"], "after the command name"),
}


@pytest.mark.parametrize("probe", list(PROBES))
def test_cli_probe_one_clear_error(probe, cli_store, cli_env):
    store, root = cli_store
    args, expected = PROBES[probe]
    as_json = bool(args)  # `reid --json` alone is a different mistake (an option before any command)
    args = [a.format(video=VIDEO, root=root) for a in args] + (["--json"] if as_json else [])
    cli_env["REID_STORE"] = str(store.path)
    before = store.dump()
    r = subprocess.run(reid_cli() + args, capture_output=True, text=True, env=cli_env, timeout=120)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and expected in lines[-1], r.stderr
    assert sum(line.startswith("error: ") for line in lines) == 1 and len(lines) <= 3  # usage + hint at most
    if as_json:
        out = json.loads(r.stdout, parse_constant=_no_nan)  # the --json contract: valid JSON, no NaN
        assert expected in out["error"]
    else:
        assert r.stdout == ""
    assert store.dump() == before
