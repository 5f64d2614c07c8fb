"""What every command shares: --json output, one readable error line instead of a traceback, store location."""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from reid_core.errors import ReidError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
StoreOpt = Annotated[Path | None, typer.Option("--store", help="Store folder (default: $REID_STORE or ./gallery).")]


def store_path(store: Path | None) -> Path:
    return Path(store or os.environ.get("REID_STORE") or "gallery")


def emit(result: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    """Print `result` as JSON (for tools) or as `human(result)` text (for people)."""
    if as_json:
        print(json.dumps(result, indent=1, default=_default))
    else:
        print(human(result))


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def run(app: typer.Typer) -> None:
    """Run the typer app; a ReidError becomes one line on stderr (and a JSON error with --json) and exit code 2."""
    try:
        app(standalone_mode=False)
    except ReidError as e:
        if "--json" in sys.argv:
            print(json.dumps({"error": str(e), "type": type(e).__name__}))
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except (typer.Exit, SystemExit) as e:
        code = getattr(e, "exit_code", getattr(e, "code", 0))
        sys.exit(code or 0)
    except Exception as e:  # click usage errors and the like
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Abort):
            sys.exit(130)
        raise


def run_command(command: Callable) -> None:
    """One command as a standalone script (pretrain/*.py), with the same error handling as `reid`."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(command)
    run(app)
