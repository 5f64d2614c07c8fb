"""Linking detections into tracks, so that one person becomes one track of many crops.

ultralytics' BoT-SORT (Kalman motion + IoU association, ByteTrack's two-stage matching of strong and weak boxes)
with one change: appearance *gates* association. Stock BoT-SORT takes the minimum of the motion and appearance
costs, which helps re-find a person but does nothing against the common failure where two people cross and the
IoU match swaps them. Here a detection may only extend a track if its feature is similar enough to the track's
smoothed feature; otherwise the track is left lost and the detection starts a new one. A fragmented track costs
little downstream (identify aggregates per track, enrol unions tracks); a mixed track poisons both identities.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from reid_core.types import Detection


@dataclass(frozen=True)
class TrackerConfig:
    track_high_thresh: float = 0.4  # first association, and the score a tracked crop needs to be kept
    track_low_thresh: float = 0.1
    new_track_thresh: float = 0.5  # a track only starts on a confident box, which keeps stray tracks out
    track_buffer: int = 30  # processed frames a lost track waits to be re-found
    match_thresh: float = 0.8
    fuse_score: bool = True
    # min cosine(track feature, detection feature) to associate; 0 disables. On the embedder's cosine scale: the
    # ingest sets it from reid_core/calibration.py (0.45 for Intel 0287); 0.6 is the OSNet x0.25 value.
    appearance_gate: float = 0.6
    # BoT-SORT's own knobs, fixed here so that every one that changes the tracks is part of the run's settings
    # (and so of its digest): no camera-motion compensation (static CCTV), ultralytics' IoU proximity for its
    # appearance cost, and its appearance threshold off (the gate above replaces it).
    gmc_method: str = "none"
    proximity_thresh: float = 0.5
    appearance_thresh: float = 0.0


class _Boxes:
    """The minimal results object the ultralytics trackers read: conf, cls, xywh (centre), boolean indexing."""

    def __init__(self, xywh: np.ndarray, conf: np.ndarray):
        self.xywh, self.conf = xywh, conf
        self.cls = np.zeros(len(conf), np.float32)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, mask) -> _Boxes:
        return _Boxes(self.xywh[mask], self.conf[mask])


def _gated_botsort(config: TrackerConfig):
    from ultralytics.trackers.bot_sort import BOTSORT
    from ultralytics.trackers.utils import matching
    from ultralytics.utils import IterableSimpleNamespace

    class GatedBoTSORT(BOTSORT):
        def init_track(self, results, img=None):
            # An all-zero row means "not embedded" (weak boxes, matched by IoU only): no feature, rather than a
            # zero vector that would turn the track's smoothed feature into NaN.
            if isinstance(img, np.ndarray) and len(img) and not np.abs(img).sum(axis=1).all():
                tracks = super().init_track(results, None)
                for track, feat in zip(tracks, img):
                    if np.any(feat):
                        track.update_features(feat)
                return tracks
            return super().init_track(results, img)

        def get_dists(self, tracks, detections):
            dists = matching.iou_distance(tracks, detections)
            if self.args.fuse_score:
                dists = matching.fuse_score(dists, detections)
            if config.appearance_gate > 0 and len(tracks) and len(detections):
                # The gate applies to every pair where both sides have a feature: with feature sampling
                # (reid_core/sampling.py) only ambiguous detections carry one, which is where swaps happen.
                ti = [i for i, t in enumerate(tracks) if t.smooth_feat is not None]
                di = [j for j, d in enumerate(detections) if d.curr_feat is not None]
                if ti and di:
                    cosine_dist = matching.embedding_distance([tracks[i] for i in ti], [detections[j] for j in di])
                    sub = dists[np.ix_(ti, di)]
                    sub[cosine_dist > 1.0 - config.appearance_gate] = 1.0
                    dists[np.ix_(ti, di)] = sub
            return dists

    fields = asdict(config)
    fields.pop("appearance_gate")
    args = IterableSimpleNamespace(tracker_type="botsort", with_reid=config.appearance_gate > 0, model="auto",
                                   **fields)
    return GatedBoTSORT(args)


# A shot change (an edited clip, a PTZ camera's preset jump) ends every track: a box at the same place after it is
# someone else as often as not, and appearance alone (the gate) does not tell two dark suits apart. Detected as the
# mean absolute difference of 32x18 grey thumbnails (0..1) of consecutive processed frames: measured at 0.10-0.12
# for the cuts of data/faces' clip, <= 0.072 elsewhere there (every 2nd frame), <= 0.015 on PETS09-S2L1.
SHOT_CHANGE = 0.09


def thumbnail(frame_bgr: np.ndarray) -> np.ndarray:
    import cv2

    grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def is_shot_change(previous: np.ndarray | None, current: np.ndarray) -> bool:
    return previous is not None and float(np.abs(current - previous).mean()) > SHOT_CHANGE


class Tracker:
    """Feed it every processed frame in order; it returns which detections belong to which track.

    Deterministic for the same input, which is what lets an interrupted ingest rebuild its state by replaying the
    stored detections and features instead of pickling tracker internals.
    """

    def __init__(self, config: TrackerConfig = TrackerConfig()):
        self.config = config
        self._tracker = _gated_botsort(config)

    def end_all(self) -> None:
        """Forget every track (a shot change): the next detections start new tracks, with new numbers."""
        t = self._tracker
        for track in t.tracked_stracks + t.lost_stracks:
            track.mark_removed()
        t.removed_stracks.extend(t.tracked_stracks + t.lost_stracks)
        t.tracked_stracks, t.lost_stracks = [], []

    def update(self, detections: list[Detection], features: np.ndarray | None = None) -> list[tuple[int, int]]:
        """(index into `detections`, track number) for every detection assigned to a confirmed track.

        `features`: one L2-normalised row per detection (needed when the appearance gate is on); an all-zero row
        for a weak detection (score below track_high_thresh), which is only ever matched by IoU.
        """
        if detections:
            xywh = np.array([[d.box.x + d.box.w / 2, d.box.y + d.box.h / 2, d.box.w, d.box.h] for d in detections],
                            np.float32)
            conf = np.array([d.score for d in detections], np.float32)
        else:
            xywh, conf = np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        if self.config.appearance_gate > 0 and features is None and detections:
            raise ValueError("this tracker gates on appearance: pass one feature per detection")
        feats = None if features is None or not len(features) else np.asarray(features, np.float32)
        out = self._tracker.update(_Boxes(xywh, conf), None, feats)
        return sorted((int(row[7]), int(row[4])) for row in out)
