"""The `reid` command line: thin shells over library calls. Every command takes --json for machine-readable output."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reid_core.cli import common

app = typer.Typer(help="reid-studio: person re-identification over video.", no_args_is_help=False,
                  pretty_exceptions_enable=False, add_completion=False)


@app.callback()
def _everywhere(
    store: Annotated[Path | None, typer.Option("--store", help="Store folder for every command (default: "
                                               "$REID_STORE or ./gallery); a command's own --store wins.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print every command's result as JSON on stdout.")]
    = False,
) -> None:
    # `reid --store DIR info` reads as naturally as `reid info --store DIR`; both must work.
    common.set_defaults(store, json_out)


# Each module adds its commands to `app`; the order here is the order of `reid --help`.
from reid_core.cli import eval as _eval  # noqa: E402
from reid_core.cli import identities as _identities  # noqa: E402
from reid_core.cli import ingest as _ingest  # noqa: E402
from reid_core.cli import search_text as _search_text  # noqa: E402
from reid_core.cli import sightings as _sightings  # noqa: E402
from reid_core.cli import store_cmd as _store_cmd  # noqa: E402
from reid_core.cli import train as _train  # noqa: E402

for _module in (_ingest, _identities, _sightings, _search_text, _eval, _train, _store_cmd):
    _module.register(app)


def main() -> None:
    common.run(app)
