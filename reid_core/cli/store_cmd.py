"""`reid store check`, `reid store compact`: integrity of the store folder itself."""
from __future__ import annotations

import typer

from reid_core.cli.common import JsonOpt, StoreOpt, emit, store_path, wants_json
from reid_core.errors import StoreError

store_app = typer.Typer(help="Check the store's integrity, or compact it (erases deleted data from the files).",
                        no_args_is_help=False)  # "Missing command" is a usage error (common.run)


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")


def _open(store):
    from reid_core.store import Store

    path = store_path(store)
    if not (path / "data.mdb").exists():
        raise StoreError(f"no store at {path} (no data.mdb); pass --store DIR or set $REID_STORE")
    return Store(path)


@store_app.command("check")
def check_cmd(store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Decode every record and check that crops, features, tracks, runs and identities refer to each other
    consistently. Exit code 2 when anything is wrong."""
    from reid_core.store import check_isolated
    from reid_core.store_env import read_meta

    path = store_path(store)
    if not (path / "data.mdb").exists():
        raise StoreError(f"no store at {path} (no data.mdb); pass --store DIR or set $REID_STORE")
    read_meta(path / "data.mdb")  # a truncated file is named before anything maps it
    # not opened here: opening reads the main tree, and a garbled page there can end a process with SIGBUS
    report = check_isolated(path)
    out = {"store": str(path.resolve()), "ok": report.ok, "bytes": report.bytes, "counts": report.counts,
           "problems": report.problems}
    if not report.ok:
        if wants_json(json_out):
            emit(out, True, str)
        raise StoreError(f"store check found {len(report.problems)} problem(s) in {out['store']}: "
                         + "; ".join(report.problems[:5]) + (" ..." if len(report.problems) > 5 else ""))
    emit(out, json_out, lambda o: f"store {o['store']}: ok, {o['bytes']:,} bytes; "
         + ", ".join(f"{k} {v}" for k, v in o["counts"].items()))


@store_app.command("compact")
def compact_cmd(store: StoreOpt = None, json_out: JsonOpt = False) -> None:
    """Rebuild the store into a fresh file: reclaims the space of deleted data and leaves none of its bytes."""
    s = _open(store)
    r = s.compact()
    emit({"store": str(s.path.resolve()), "bytes_before": r.bytes_before, "bytes_after": r.bytes_after,
          "seconds": round(r.seconds, 3)}, json_out,
         lambda o: f"compacted {o['store']}: {o['bytes_before']:,} -> {o['bytes_after']:,} bytes "
                   f"({o['seconds']} s)")
