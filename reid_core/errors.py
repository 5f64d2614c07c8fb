"""Exceptions a user can act on. Every message says what was wrong and what to do about it."""


class ReidError(Exception):
    """Base class: the CLI and the app show these messages as they are, without a traceback."""


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
