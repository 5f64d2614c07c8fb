"""Learning a store's camera-timing model without labels, from its own confident cross-camera matches.

Every stored track of a video with a known start is one sighting (its mean feature, camera, first and last time);
reid_core.spacetime.learn_unlabelled pairs sightings that are each other's best cross-camera match above the
decision threshold, learns transitions from them, re-scores with the model and repeats. Tracks of videos without a
start time cannot take part (their times are not on the shared clock).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reid_core.errors import StoreError
from reid_core.matching import MIN_TRACK_CROPS, track_feature
from reid_core.settings import Settings, current
from reid_core.spacetime import Span, StParams, TransitionModel, learn_unlabelled
from reid_core.st_store import model_file, span
from reid_core.stitching import video_tracks
from reid_core.store import Store
from reid_core.types import Track


@dataclass(frozen=True)
class StoreFit:
    model: TransitionModel
    sightings: int  # tracks on the shared clock that took part
    pairs: int  # confident cross-camera matches the model was learned from
    rounds: int
    path: Path | None  # where it was saved (None: not saved)


def clock_sightings(store: Store, settings: Settings | None = None,
                    min_crops: int = MIN_TRACK_CROPS) -> tuple[np.ndarray, list[Span], list[Track]]:
    """Features, spans and tracks of the stored tracks whose video has a start time (min_crops: shorter tracks are
    mostly detector flicker)."""
    settings = current(settings)
    feats, spans, tracks = [], [], []
    for video in store.videos():
        if video.start is None:
            continue
        for t in video_tracks(store, video.video_id, settings=settings):
            if len(t) < min_crops:
                continue
            feats.append(track_feature(store, t))
            spans.append(span(video, t.camera, t.frames[0], t.frames[-1]))
            tracks.append(t)
    return (np.stack(feats) if feats else np.zeros((0, 1), np.float32)), spans, tracks


def learn_from_store(store: Store, settings: Settings | None = None, min_score: float | None = None,
                     rounds: int = 3, params: StParams | None = None, save: bool = True) -> StoreFit:
    """The store's model from its confident cross-camera matches (min_score: the embedder's decision threshold
    unless given), saved next to the store unless save=False."""
    settings = current(settings)
    min_score = settings.threshold if min_score is None else min_score
    feats, spans, _ = clock_sightings(store, settings)
    cameras = {s.camera for s in spans}
    if len(cameras) < 2:
        raise StoreError(f"the store has tracks on a shared clock from {len(cameras)} camera(s); learning camera "
                         f"transitions needs videos of two or more cameras with a start time",
                         cli_hint="ingest them with --start ISO-8601 (one clock for all cameras)")
    fit = learn_unlabelled(feats, spans, params, min_score, rounds)
    path = fit.model.save(model_file(store)) if save else None
    return StoreFit(fit.model, len(spans), fit.pairs, fit.rounds, path)
