"""A store's spatial-temporal model: where it is kept, whether a query uses it, and each sighting on the wall clock.

The model (reid_core/spacetime.py) lives next to the store's database as `spacetime.json`. A query uses it when asked
to (st on), never when told not to (st off), and by default only when the store has one: a store without a learned
model answers exactly as before.
"""
from __future__ import annotations

from pathlib import Path

from reid_core import clock
from reid_core.errors import StoreError
from reid_core.spacetime import Span, TransitionModel, load_model, model_path
from reid_core.store import Store, VideoRecord


def model_file(store: Store) -> Path:
    return model_path(store.path)


def store_model(store: Store) -> TransitionModel | None:
    return load_model(model_file(store))


def resolve(store: Store, use_st: bool | None) -> TransitionModel | None:
    """The model a query uses: use_st None = the store's if it has one; True = the store's, which must exist;
    False = none."""
    if use_st is False:
        return None
    model = store_model(store)
    if model is None or model.empty:
        if use_st:
            raise StoreError(f"the store {store.path} has no spatial-temporal model yet",
                             cli_hint="learn one with `reid st learn` (from its cross-camera matches)",
                             app_hint="learn one on the Gallery tab (\"Learn camera timing from this store\"), "
                                      "or untick 'use camera timing'")
        return None
    return model


def span(video: VideoRecord | None, camera: str, first_frame: int, last_frame: int) -> Span:
    """A sighting (frames of one video) on the wall clock; times None when the video's start is unknown."""
    if video is None:
        return Span(camera, None, None)
    return Span(camera, clock.frame_time(video.start, video.fps, first_frame),
                clock.frame_time(video.start, video.fps, last_frame))
