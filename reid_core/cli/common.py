"""What every command shares: --json output, one readable error line instead of a traceback, store location."""
from __future__ import annotations

import ast
import difflib
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, cast

import typer
import typer.main

from reid_core.errors import ReidError

if TYPE_CHECKING:  # the classes typer 0.29 raises (its bundled click); click's own have the same attributes
    from typer._click import exceptions as click_errors

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
StoreOpt = Annotated[Path | None, typer.Option("--store", help="Store folder (default: `reid --store DIR`, "
                                                         "$REID_STORE or ./gallery).")]
StOpt = Annotated[bool | None, typer.Option(
    "--st/--no-st", help="Use camera timing (the store's spatial-temporal model, `reid st learn`) in the decision; "
                         "the threshold keeps its meaning. Default: on when the store has a model.")]


@dataclass(frozen=True)
class Defaults:
    """What `reid --store DIR --json COMMAND` gives every command that does not say otherwise."""
    store: Path | None = None
    json: bool = False


# Set by the root callback on every invocation (and reset by run()), so nothing carries over from one in-process
# run to the next. Not os.environ: the environment is inherited by whatever a command starts (torchrun workers,
# decoders) and outlives the command. Not the click context's obj: reading it back here, deep inside a command,
# needs click's get_current_context, which typer 0.29 keeps in its private bundled copy of click.
_defaults = Defaults()


def set_defaults(store: Path | None = None, as_json: bool = False) -> None:
    global _defaults
    _defaults = Defaults(store, as_json)


def defaults() -> Defaults:
    return _defaults


def store_path(store: Path | None) -> Path:
    """The command's own --store, else the global `reid --store`, else $REID_STORE, else ./gallery."""
    return Path(store or _defaults.store or os.environ.get("REID_STORE") or "gallery")


def settings(store: Path | None = None, embedder: str | None = None):
    """The command's settings, built once from its options, the global options and the environment."""
    from reid_core.settings import Settings

    return Settings.from_env(store=store_path(store), embedder=embedder)


def wants_json(as_json: bool) -> bool:
    """The command's --json or the global `reid --json`."""
    return as_json or _defaults.json


def emit(result: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    """Print `result` as JSON (for tools) or as `human(result)` text (for people)."""
    if wants_json(as_json):
        print(json.dumps(result, indent=1, default=_default))
    else:
        print(human(result))


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def usage_error(message: str) -> NoReturn:
    """A mistake in how a command was called that click cannot see (options that exclude each other). Raised as
    typer's public UsageError subclass so click attaches the command's context and run() reports it like its own
    mistakes, with the command's --help hint."""
    raise typer.BadParameter(message)


def _fail(message: str, kind: str) -> NoReturn:
    """The error contract: one `error: ...` line on stderr, `{"error": ..., "type": ...}` on stdout with --json,
    exit code 2. sys.argv rather than the parsed flag: a usage mistake stops parsing before --json is read."""
    message = " ".join(message.split()) if kind == "UsageError" else message
    if "--json" in sys.argv[1:] or _defaults.json:
        print(json.dumps({"error": message, "type": kind}))
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


def _param_name(param: Any) -> str:
    """How the user types it: --name for an option, VIDEO for an argument."""
    opts = list(getattr(param, "opts", None) or [])
    if getattr(param, "param_type_name", "") == "option" and opts:
        return max(opts, key=len)
    return (param.name or "?").upper()


def _first_sentence(text: str | None) -> str:
    sentence = re.sub(r"\s*\([^()]*\)", "", (text or "").split(". ")[0]).strip().rstrip(".")  # no asides
    return sentence[:1].lower() + sentence[1:] if 0 < len(sentence) <= 60 else ""


# pydantic error types (typer 0.29 converts values with pydantic) in the words the rest of the CLI uses
_VALUE_ERRORS = {"int_parsing": "not a whole number", "int_from_float": "not a whole number",
                 "float_parsing": "not a number", "bool_parsing": "not true or false"}


def _bad_value(e: Exception) -> str:
    param, hint = getattr(e, "param", None), getattr(e, "param_hint", None)
    where = (hint if isinstance(hint, str) else " / ".join(hint)) if hint else (_param_name(param) if param else "")
    where = where.strip("'\"")
    text = cast("click_errors.BadParameter", e).message.rstrip(".")  # only called for a BadParameter
    errors = getattr(e.__cause__, "errors", None)
    if callable(errors):  # the value itself is only in pydantic's error, not in typer's message
        first = (errors() or [{}])[0]
        detail = _VALUE_ERRORS.get(first.get("type"), text[:1].lower() + text[1:])
        if "input" in first:
            return f"invalid value {first['input']!r} for {where}: {detail}"
    if not where:
        return text  # raised by usage_error(): the message says it all
    return f"invalid value for {where}: {text[:1].lower() + text[1:]}"


def _commands(ctx: Any) -> list[str]:
    command: Any = getattr(ctx, "command", None)
    return list(command.list_commands(ctx)) if hasattr(command, "list_commands") else []


def _owners(ctx: Any, option: str) -> list[str]:
    """The commands (below the group of `ctx`) that have `option`, as `reid info`-style paths."""
    found = []

    def walk(command: Any, path: str) -> None:
        for sub_name, sub in (getattr(command, "commands", None) or {}).items():
            if any(option in (p.opts + p.secondary_opts) for p in sub.params if hasattr(p, "opts")):
                found.append(f"{path} {sub_name}")
            walk(sub, f"{path} {sub_name}")

    walk(ctx.command, ctx.command_path)
    return found


def _closest(word: str, choices: list[str]) -> list[str]:
    """The likeliest meant choices: the closest one, and any about as close."""
    scored = sorted(((difflib.SequenceMatcher(None, word, c).ratio(), c) for c in choices), reverse=True)
    scored = [(r, c) for r, c in scored if r >= 0.6]
    return [c for r, c in scored if r >= scored[0][0] - 0.1][:3] if scored else []


def _program() -> str:
    name = Path(sys.argv[0]).name
    if name == "__main__.py":
        return f"python -m {Path(sys.argv[0]).parent.name}"
    return name or "reid"


def _path_from_argv(root: Any) -> str:
    """The command a usage mistake is about, from the words typed, for errors click raises without a context
    (`reid info --store` with no folder)."""
    path, command = [_program()], root
    for word in sys.argv[1:]:
        sub = (getattr(command, "commands", None) or {}).get(word)
        if sub is None:
            if not word.startswith("-") and getattr(command, "commands", None):
                break
            continue
        path.append(word)
        command = sub
    return " ".join(path)


def _usage_message(e: Exception, root: Any = None) -> str:
    """One line for a click usage mistake: what was wrong, a suggestion where one is likely, and where help is."""
    ctx = getattr(e, "ctx", None)
    where = ctx.command_path if ctx is not None else (_path_from_argv(root) if root is not None else "")
    text = _what_went_wrong(e, ctx)
    if not where:
        return text
    return f"{text}{' ' if text.endswith('?') else '; '}see `{where} --help`"


def _what_went_wrong(e: Exception, ctx: Any) -> str:
    message = cast("click_errors.UsageError", e).format_message()  # only called for a UsageError
    if _is(e, "NoArgsIsHelpError") or message.startswith("Missing command"):
        names = _commands(ctx)
        return "missing command" + (f" (one of {', '.join(names)})" if names else "")
    if _is(e, "MissingParameter") and getattr(e, "param", None) is not None:
        missing = cast("click_errors.MissingParameter", e)
        param = missing.param
        assert param is not None, "checked just above"
        kind = missing.param_type or param.param_type_name
        what = _first_sentence(getattr(param, "help", None))
        return f"missing {kind} {_param_name(param)}" + (f" ({what})" if what else "")
    if _is(e, "NoSuchOption"):
        unknown = cast("click_errors.NoSuchOption", e)
        text = f"unknown option {unknown.option_name}"
        close = _closest(unknown.option_name, list(unknown.possibilities or []))
        if close:
            return text + f"; did you mean {' or '.join(f'`{p}`' for p in close)}?"
        owners = _owners(ctx, unknown.option_name) if ctx is not None and _commands(ctx) else []
        if owners:
            shown = ", ".join(f"`{o}`" for o in owners[:3]) + (", ..." if len(owners) > 3 else "")
            text += f" for `{ctx.command_path}`; it belongs to {shown}: put it after the command name"
        return text
    match = re.match(r"No such command (.+?)\.(?: Did you mean|$)", message)
    if match:
        try:
            name = str(ast.literal_eval(match.group(1)))
        except (ValueError, SyntaxError):
            name = match.group(1).strip("'\"")
        close = _closest(name, _commands(ctx))
        return f"unknown command `{name}`" + (f"; did you mean {' or '.join(f'`{c}`' for c in close)}?"
                                              if close else "")
    if _is(e, "BadParameter"):
        return _bad_value(e)
    return message[:1].lower() + message[1:].rstrip(".")


def run(app: typer.Typer) -> None:
    """Run the typer app; a ReidError or a usage mistake becomes one line on stderr (and a JSON error with --json)
    and exit code 2."""
    set_defaults()
    try:
        code = app(standalone_mode=False)
    except ReidError as e:
        # for_cli(): the message with its command-line remedy (reid_core/errors.py), where the error carries one
        _fail(e.for_cli() if hasattr(e, "for_cli") else str(e), type(e).__name__)
    except (typer.Exit, SystemExit) as e:
        code = getattr(e, "exit_code", getattr(e, "code", 0))
        sys.exit(code or 0)
    except Exception as e:
        if _is(e, "Abort"):  # Ctrl-C at a prompt
            sys.exit(130)
        if _is(e, "UsageError"):
            _fail(_usage_message(e, typer.main.get_command(app)), "UsageError")
        if _is(e, "ClickException"):
            _fail(cast("click_errors.ClickException", e).format_message(), type(e).__name__)
        raise
    # Without standalone mode click returns an Exit's code (--help: 0; `raise typer.Exit(1)`: 1) instead of exiting.
    sys.exit(code if isinstance(code, int) else 0)


def run_command(command: Callable) -> None:
    """One command as a standalone script (pretrain/*.py), with the same error handling as `reid`."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(command)
    run(app)
