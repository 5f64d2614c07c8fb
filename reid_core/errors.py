"""Exceptions a user can act on. Every message says what was wrong and what to do about it.

The message itself names no command-line flag or app button: the CLI and the app offer different remedies, so an
error may carry one hint for each (`cli_hint`, `app_hint`) and each shell shows its own (`for_cli`, `for_app`)."""
from __future__ import annotations


class ReidError(Exception):
    """Base class: the CLI and the app show these messages as they are, without a traceback."""

    def __init__(self, message: str = "", *, cli_hint: str = "", app_hint: str = ""):
        super().__init__(message)
        self.cli_hint = cli_hint
        self.app_hint = app_hint

    def _with(self, hint: str) -> str:
        text = str(self)
        return f"{text}; {hint}" if hint else text

    def for_cli(self) -> str:
        return self._with(self.cli_hint)

    def for_app(self) -> str:
        return self._with(self.app_hint)


class WeightsError(ReidError):
    """A model file is missing or does not match the manifest."""


class VideoError(ReidError):
    """A file is not a readable video, or a frame range does not fit it."""


class StoreError(ReidError):
    """The store refused a request (bad name, conflicting ingest, unknown identity...)."""


class OverlapError(StoreError):
    """Part of the range is already ingested as another run (another range or other settings)."""


class InputError(ReidError):
    """An argument is malformed (a box string, a name, an image file)."""
