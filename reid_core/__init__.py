"""reid-studio: person re-identification over video (detect, track, embed, store, match)."""
from reid_core import offline as _offline  # noqa: F401  (sets offline switches before heavy imports)

__version__ = "0.1.0"
