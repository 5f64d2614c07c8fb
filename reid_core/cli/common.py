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


def _fail(message: str, kind: str, usage: str = "") -> None:
    """The error contract: one `error: ...` line on stderr (after a usage hint, if any), `{"error": ...}` on
    stdout with --json, exit code 2."""
    if "--json" in sys.argv:
        print(json.dumps({"error": message, "type": kind}))
    if usage:
        print(usage.rstrip(), file=sys.stderr)
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _is(error: Exception, name: str) -> bool:
    """typer 0.29 raises the exceptions of its bundled copy of click (typer._click, typer.exceptions), not click's
    own; look in all of them so a usage mistake is never a traceback whichever click a typer version uses."""
    import importlib

    for module in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and isinstance(error, cls):
            return True
    return False


def run(app: typer.Typer) -> None:
    """Run the typer app; a ReidError or a usage mistake becomes one line on stderr (and a JSON error with --json)
    and exit code 2."""
    try:
        app(standalone_mode=False)
    except ReidError as e:
        _fail(str(e), type(e).__name__)
    except (typer.Exit, SystemExit) as e:
        code = getattr(e, "exit_code", getattr(e, "code", 0))
        sys.exit(code or 0)
    except Exception as e:
        if _is(e, "Abort"):  # Ctrl-C at a prompt
            sys.exit(130)
        if _is(e, "NoArgsIsHelpError"):  # typer printed the help already (to stdout, as rich output)
            _fail(f"missing command; see `{e.ctx.command_path} --help`", "UsageError")
        if _is(e, "UsageError"):
            ctx, message = e.ctx, e.format_message()
            if (ctx is not None and ctx.parent is None and "No such option" in message
                    and any(a in sys.argv for a in ("--store", "--json"))):
                message += " (options go after the command name, e.g. `reid info --store DIR`)"
            if ctx is not None and hasattr(ctx.command, "list_commands") and message.startswith("Missing command"):
                message = f"missing command: one of {', '.join(ctx.command.list_commands(ctx))}"
            usage = f"{ctx.get_usage()}\nTry '{ctx.command_path} --help' for help." if ctx is not None else ""
            _fail(message, "UsageError", usage)
        if _is(e, "ClickException"):
            _fail(e.format_message(), type(e).__name__)
        raise


def run_command(command: Callable) -> None:
    """One command as a standalone script (pretrain/*.py), with the same error handling as `reid`."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(command)
    run(app)
