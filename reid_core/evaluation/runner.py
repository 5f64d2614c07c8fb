"""`reid eval` as a library call: embed a protocol's crops, apply the chosen inference-time improvements, score.

    report = evaluate_mot("../shared/data/pets09_s2l1", EvalSettings())      # per-crop OSNet, cosine
    report = evaluate_mot("../shared/data/pets09_s2l1", BEST)                # the project's best settings
    report.to_dict()["mAP"]

Embeddings (and the tracker's output) are cached on disk under the project cache folder, keyed by the file
contents, boxes, model weights and code that produced them, so a second run, or a benchmark scoring many settings,
only embeds each crop once per model.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from reid_core.embedding import (
    DEFAULT_MODEL,
    FUSIONS,
    SPECS,
    embedder_spec,
    fuse_features,
    known_embedders,
    load_embedder,
)
from reid_core.errors import InputError, WeightsError
from reid_core.evaluation import datasets as ds
from reid_core.evaluation import features as feat
from reid_core.evaluation import plots
from reid_core.evaluation.metrics import CMC_RANKS, RankResult, distance, evaluate_rank, l2_normalise
from reid_core.evaluation.rerank import RerankParams, re_ranking, re_ranking_shortlist
from reid_core.evaluation.verification import VerificationResult, verify
from reid_core.types import Box, Track

TRACK_MODES = ("none", "tracker", "oracle")
EXACT_RERANK_LIMIT = 12_000  # query + gallery items; above it the dense (Q+G)^2 matrices pass ~2 GB
DEFAULT_SHORTLIST = 100
EMBED_CHUNK = 512  # images decoded and embedded at a time for image datasets (bounded memory)
CROP_MEMO_BYTES = 1 << 29  # decoded crops kept in memory between models up to 512 MiB (about 5,000 crops)

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class EvalSettings:
    """Everything that changes the numbers. The defaults are the plain per-crop baseline."""

    models: tuple[str, ...] = (DEFAULT_MODEL,)  # several: features concatenated (each L2-normalised), an ensemble
    backend: str = "openvino"
    flip: bool = False  # average each crop's feature with its mirror image's
    metric: str = "cosine"
    tracks: str = "none"  # "tracker": blend with the project tracker's track mean; "oracle": gt track mean
    track_weight: float = 0.5  # weight of the track mean against the crop's own feature
    rerank: bool = False  # k-reciprocal re-ranking
    k1: int = 20
    k2: int = 6
    lambda_value: float = 0.3
    shortlist: int = 0  # 0: exact re-ranking up to EXACT_RERANK_LIMIT items, shortlist re-ranking above
    aqe: int = 0  # average query expansion with this many gallery neighbours (0: off)
    dba: int = 0  # database-side augmentation: each gallery item averaged with this many gallery neighbours
    max_rank: int = 50

    def check(self) -> None:
        if not self.models:
            raise InputError("choose at least one model")
        unknown = [m for m in self.models if not _is_embedder(m)]
        if unknown:
            raise InputError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(known_embedders())}")
        if self.backend == "torch":
            members = [x for m in self.models for x in (FUSIONS[m].members if m in FUSIONS else (m,))]
            ir_only = [m for m in members if m in SPECS and not SPECS[m].arch]
            if ir_only:
                raise InputError(f"{', '.join(ir_only)} only run on the openvino backend")
        if self.tracks not in TRACK_MODES:
            raise InputError(f"tracks must be one of {', '.join(TRACK_MODES)}, got {self.tracks!r}")
        if not 0 <= self.track_weight <= 1:
            raise InputError(f"track weight must be in [0, 1], got {self.track_weight}")
        if self.aqe < 0 or self.dba < 0 or self.shortlist < 0 or self.max_rank < 1:
            raise InputError("aqe, dba and shortlist must be >= 0 and max_rank >= 1")
        if self.metric not in ("cosine", "euclidean"):
            raise InputError(f"metric must be cosine or euclidean, got {self.metric!r}")
        RerankParams(self.k1, self.k2, self.lambda_value).check()

    def label(self) -> str:
        parts = ["+".join(self.models), self.backend]
        if self.flip:
            parts.append("flip")
        if self.tracks != "none":
            parts.append(f"{self.tracks} tracks (w={self.track_weight:g})")
        if self.dba:
            parts.append(f"DBA k={self.dba}")
        if self.aqe:
            parts.append(f"AQE k={self.aqe}")
        if self.rerank:
            parts.append(f"re-rank k1={self.k1} k2={self.k2} λ={self.lambda_value:g}")
        if self.metric != "cosine":
            parts.append(self.metric)
        return ", ".join(parts)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["models"] = list(self.models)
        return d


# The project's best inference-time settings (`reid eval --best`), chosen for what generalises, not fitted to PETS:
# - person-reidentification-retail-0287 (Intel Open Model Zoo, OSNet-style, Market-1501 mAP 76.6% as Intel
#   publishes; its training sets are not listed, PETS is not a ReID training set): per crop, the strongest
#   embedder we have;
# - flip averaging: a person seen mirrored is the same person; one extra forward pass;
# - k-reciprocal re-ranking with the paper's k1=20, k2=6, lambda=0.3, unchanged.
# Measured and left out (docs/evaluation.md has the rows): track-level features from the project's tracker lift
# the weak OSNet x0.25 MSMT17 a lot but do not improve this embedder (a track mean makes every crop of a track
# share one mistake, and crops the detector misses, the hardest ones, keep their own feature); ensembles with the
# OSNet weights also scored no higher than 0287 alone.
BEST = EvalSettings(models=("person-reidentification-retail-0287",), flip=True, rerank=True)


@dataclass(frozen=True)
class Timings:
    embed_s: float = 0.0
    track_s: float = 0.0
    score_s: float = 0.0
    total_s: float = 0.0


@dataclass(frozen=True)
class DatasetInfo:
    kind: str  # "mot", "market", "peta" or "features"
    name: str
    path: str
    num_query: int
    num_gallery: int
    identity: str = ""  # MOT: "person" or "track"
    counts: tuple[tuple[str, int], ...] = ()  # protocol counts, in display order


@dataclass
class OutputFiles:
    report_json: str | None = None
    cmc_png: str | None = None
    roc_png: str | None = None
    features: str | None = None  # --save-features

    def written(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in asdict(self).items() if v is not None]


@dataclass
class EvalReport:
    dataset: DatasetInfo
    settings: EvalSettings
    rank: RankResult
    verification: VerificationResult | None
    timings: Timings
    notes: list[str] = field(default_factory=list)
    track_coverage: float | None = None  # share of crops the tracker matched (tracks="tracker")
    files: OutputFiles = field(default_factory=OutputFiles)

    def to_dict(self) -> dict:
        r = self.rank
        out: dict[str, object] = {
            "mAP": _num(r.mAP), "R1": _num(r.rank(1)), "R5": _num(r.rank(5)), "R10": _num(r.rank(10)),
            "R20": _num(r.rank(20)), "mINP": _num(r.mINP), "cmc": [_num(x) for x in r.cmc],
            "num_query": r.num_query, "num_evaluated": r.num_evaluated, "num_skipped": r.num_skipped,
            "num_gallery": self.dataset.num_gallery}
        v = self.verification
        if v is not None:
            out["verification"] = {
                "eer": v.eer, "eer_threshold": v.eer_threshold, "auc": v.auc,
                "num_genuine": v.num_genuine, "num_impostor": v.num_impostor,
                "tar_at_far": {f"{p.far_target:.0e}": p.tar for p in v.points},
                "thresholds": {f"{p.far_target:.0e}": p.threshold for p in v.points},
            }
        out["settings"] = self.settings.as_dict()
        out["settings_label"] = self.settings.label()
        d = self.dataset
        out["dataset"] = {"kind": d.kind, "name": d.name, "path": d.path, "num_query": d.num_query,
                          "num_gallery": d.num_gallery, "identity": d.identity, "protocol": dict(d.counts)}
        if self.track_coverage is not None:
            out["track_coverage"] = self.track_coverage
        out["timings"] = asdict(self.timings)
        out["notes"] = list(self.notes)
        out["files"] = dict(self.files.written())
        return out


def _num(x: float) -> float | None:
    """JSON has no NaN: a metric with no evaluated query is null."""
    x = float(x)
    return None if np.isnan(x) else x


@dataclass(frozen=True)
class TrackMeans:
    """Predicted-track mean features per query and gallery crop; rows where `*_matched` is False are unused."""

    query: np.ndarray
    gallery: np.ndarray
    query_matched: np.ndarray
    gallery_matched: np.ndarray

    @property
    def coverage(self) -> float:
        n = len(self.query_matched) + len(self.gallery_matched)
        return float(self.query_matched.sum() + self.gallery_matched.sum()) / max(n, 1)


@dataclass(frozen=True)
class Scored:
    distmat: np.ndarray
    rank: RankResult
    verification: VerificationResult | None


# ---------------------------------------------------------------- scoring (shared by every dataset kind)


def score(qf: np.ndarray, gf: np.ndarray, query: ds.Items, gallery: ds.Items, settings: EvalSettings,
          with_verification: bool = True) -> Scored:
    """Query/gallery expansion, distances, optional re-ranking, rank metrics and the verification view."""
    if settings.dba:
        gf = feat.database_augmentation(gf, settings.dba)
    if settings.aqe:
        qf = feat.average_query_expansion(qf, gf, settings.aqe)
    d = distance(qf, gf, settings.metric)
    if settings.rerank:
        n = len(qf) + len(gf)
        if settings.shortlist or n > EXACT_RERANK_LIMIT:
            sl = re_ranking_shortlist(qf, gf, settings.k1, settings.k2, settings.lambda_value,
                                      shortlist=settings.shortlist or DEFAULT_SHORTLIST, metric=settings.metric)
            d = sl.dense(len(gf), rest=d)
        else:
            d = re_ranking(d, distance(qf, qf, settings.metric), distance(gf, gf, settings.metric),
                           settings.k1, settings.k2, settings.lambda_value)
    rank = evaluate_rank(d, query.pids, gallery.pids, query.camids, gallery.camids, settings.max_rank)
    ver = None
    if with_verification:
        # similarity = 1 - distance: the cosine similarity itself for the plain cosine metric
        try:
            ver = verify(1.0 - d, query.pids, gallery.pids, query.camids, gallery.camids)
        except InputError:
            ver = None  # e.g. no genuine cross-camera pair; the rank metrics still stand
    return Scored(d, rank, ver)


# ---------------------------------------------------------------- on-disk cache


class DiskCache:
    """Arrays and JSON keyed by a hash of what produced them; a missing or unreadable entry is recomputed."""

    def __init__(self, root: Path | None):
        self.root = root

    @staticmethod
    def key(*parts) -> str:
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]

    def get_array(self, key: str) -> np.ndarray | None:
        if self.root is None:
            return None
        path = self.root / f"{key}.npy"
        try:
            return np.load(path) if path.is_file() else None
        except (OSError, ValueError):
            return None

    def put_array(self, key: str, value: np.ndarray) -> None:
        if self.root is None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f"{key}.tmp.npy"
        np.save(tmp, value)
        tmp.replace(self.root / f"{key}.npy")  # atomic: a killed run never leaves half a file under the key

    def get_json(self, key: str):
        if self.root is None:
            return None
        path = self.root / f"{key}.json"
        try:
            return json.loads(path.read_text()) if path.is_file() else None
        except (OSError, ValueError):
            return None

    def put_json(self, key: str, value) -> None:
        if self.root is None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f"{key}.tmp.json"
        tmp.write_text(json.dumps(value))
        tmp.replace(self.root / f"{key}.json")


def default_cache() -> DiskCache:
    from reid_core import offline

    return DiskCache(offline.cache_dir() / "eval")


def _is_embedder(name: str) -> bool:
    """A manifest embedder, or a trained model (reid_core.models file) found in the weights folders."""
    try:
        embedder_spec(name)
    except WeightsError:
        return False
    return True


def _model_id(name: str, backend: str) -> list[str]:
    from reid_core.weights import resolve, sha256_of

    if name not in SPECS:
        # A trained model: its file's hash is in the key, so retraining under the same name invalidates the cache.
        from reid_core.models import find_trained

        return [name, backend, "trained", sha256_of(find_trained(name))[:16]]
    files = resolve(name)
    return [name, backend, *(sha256_of(p)[:16] for p in files.paths)]


def _source_digest(*modules: str) -> str:
    """Hash of the code that produced a cached result, so a changed tracker or detector invalidates it."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for m in modules:
        h.update((root / m).read_bytes())
    return h.hexdigest()[:16]


class Embeddings:
    """Embeds crops with one model, plain and mirrored, through the cache."""

    def __init__(self, cache: DiskCache, log: Log = _quiet):
        self.cache = cache
        self.log = log
        self.seconds = 0.0
        self._memo: dict[str, np.ndarray] = {}  # this process's results, also when the disk cache is off

    def get(self, model: str, backend: str, flip: bool, source_key: str,
            crops: Callable[[], np.ndarray]) -> np.ndarray:
        """L2-normalised features; with flip, the mean of the plain and mirrored crops' features (as
        `load_embedder(..., flip=True)` computes it). A fusion is computed from its members' cached features,
        exactly as `FusionEmbedder.embed` fuses them."""
        if model in FUSIONS:
            spec = FUSIONS[model]
            return fuse_features([self.get(m, backend, flip, source_key, crops) for m in spec.members], spec.weights)
        plain = self._side(model, backend, False, source_key, crops)
        if not flip:
            return plain
        mirrored = self._side(model, backend, True, source_key, crops)
        return l2_normalise(l2_normalise(plain) + l2_normalise(mirrored))

    def _side(self, model: str, backend: str, mirrored: bool, source_key: str, crops) -> np.ndarray:
        key = DiskCache.key("embed", _model_id(model, backend), mirrored, source_key)
        got = self._memo.get(key)
        if got is None:
            got = self.cache.get_array(key)
        if got is not None:
            self._memo[key] = got
            return got
        t = time.perf_counter()
        c = crops()
        if mirrored:
            c = np.ascontiguousarray(c[:, :, ::-1])
        self.log(f"embedding {len(c)} crops with {model} ({backend}{', mirrored' if mirrored else ''})")
        embedder = load_embedder(model, backend, False)
        out = embedder.embed(c)
        self.seconds += time.perf_counter() - t
        self.cache.put_array(key, out)
        self._memo[key] = out
        return out


def _ensemble(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenation of L2-normalised features: its cosine is the mean of the models' cosines."""
    return l2_normalise(np.hstack([l2_normalise(p) for p in parts]))


# ---------------------------------------------------------------- MOTChallenge sequences


class MotEvaluation:
    """One MOT sequence under the ReID protocol; features are computed lazily and reused across settings."""

    def __init__(self, root: str | Path, use_persons: bool = True, cache: DiskCache | None = None,
                 log: Log = _quiet, frames: tuple[int, int] | None = None):
        self.protocol = ds.load_mot(root, use_persons, frames)
        self.frames = frames
        self.seq = self.protocol.sequence
        self.cache = cache if cache is not None else default_cache()
        self.log = log
        self.embeddings = Embeddings(self.cache, log)
        self.track_seconds = 0.0
        self._frames_key = self._frames_signature()
        self._crop_memo: dict[str, np.ndarray] = {}
        self._tracks: list[list[Track]] | None = None

    # -- inputs

    def _frames_signature(self) -> str:
        from reid_core.video import file_sha256

        if self.seq.video is not None:
            return "video:" + file_sha256(self.seq.video)
        assert self.seq.image_dir is not None, "a sequence without a video has its frames in img1/"
        files = sorted(p for p in self.seq.image_dir.iterdir() if p.suffix.lower() in ds.IMAGE_SUFFIXES)
        h = hashlib.sha256()
        for p in files:
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
        return "images:" + h.hexdigest()

    def _crops(self, name: str, frames: np.ndarray, boxes: list[Box]) -> Callable[[], np.ndarray]:
        def make() -> np.ndarray:
            if name in self._crop_memo:
                return self._crop_memo[name]
            crops = ds.cut_crops(self.seq, frames, boxes)
            if crops.nbytes <= CROP_MEMO_BYTES:  # kept for the mirrored pass and other models; big sets re-decode
                self._crop_memo[name] = crops
            return crops

        return make

    @staticmethod
    def _boxes_key(frames: np.ndarray, boxes: list[Box]) -> str:
        arr = np.array([[f, b.x, b.y, b.w, b.h] for f, b in zip(frames, boxes)], np.float64)
        return hashlib.sha256(arr.tobytes()).hexdigest()

    def _features(self, model: str, settings: EvalSettings, name: str, frames: np.ndarray,
                  boxes: list[Box]) -> np.ndarray:
        source = f"{self._frames_key}/{self._boxes_key(frames, boxes)}"
        return self.embeddings.get(model, settings.backend, settings.flip, source,
                                   self._crops(name, frames, boxes))

    def item_features(self, model: str, settings: EvalSettings) -> tuple[np.ndarray, np.ndarray]:
        q, g = self.protocol.query, self.protocol.gallery
        frames = np.concatenate([q.frames, g.frames])
        f = self._features(model, settings, "items", frames, q.boxes + g.boxes)
        return f[: len(q)], f[len(q):]

    # -- oracle tracking: each crop's gt track within its pseudo-camera

    def oracle_means(self, model: str, settings: EvalSettings) -> tuple[np.ndarray, np.ndarray]:
        p = self.protocol
        frames = np.array([b.frame - 1 for b in p.boxes], np.int64)
        f = self._features(model, settings, "all-gt", frames, [b.box for b in p.boxes])
        labels = np.array([[b.track, c] for b, c in zip(p.boxes, p.box_cams)], np.int64)
        means = feat.group_means(f, labels)
        index = {(b.frame - 1, b.track): i for i, b in enumerate(p.boxes)}

        def pick(items: ds.Items) -> np.ndarray:
            assert items.frames is not None and items.tracks is not None, "MOT items have frames and gt tracks"
            return means[[index[(int(fr), int(t))] for fr, t in zip(items.frames, items.tracks)]]

        return pick(p.query), pick(p.gallery)

    # -- the project's tracker, run on each pseudo-camera separately

    def tracks(self) -> list[list[Track]]:
        if self._tracks is None:
            used = set(self.protocol.query.camids.tolist()) | set(self.protocol.gallery.camids.tolist())
            self._tracks = [self._camera_tracks(c) if c in used else [] for c in range(self.protocol.num_cameras)]
        return self._tracks

    def _camera_tracks(self, cam: int) -> list[Track]:
        from reid_core.ingest import detect_and_track
        from reid_core.settings import Settings

        settings = Settings.from_env().ingest  # the tracker the app would use; its digest keys the cache
        start, stop = ds.camera_frame_range(self.protocol, cam)
        key = DiskCache.key("tracks", self._frames_key, start, stop, settings.digest(),
                            _source_digest("ingest.py", "tracking.py", "detection.py"))
        cached = self.cache.get_json(key)
        if cached is not None:
            return [Track(t["id"], "", f"cam{cam}", frames=t["frames"], boxes=[Box(*b) for b in t["boxes"]],
                          scores=t["scores"]) for t in cached]
        t0 = time.perf_counter()
        self.log(f"tracking pseudo-camera {cam} (frames {start}-{stop}) with the project tracker")
        tracks = detect_and_track(self._video(), start, stop, settings=settings)
        self.track_seconds += time.perf_counter() - t0
        self.cache.put_json(key, [{"id": t.track_id, "frames": [int(f) for f in t.frames],
                                   "boxes": [[b.x, b.y, b.w, b.h] for b in t.boxes],
                                   "scores": [float(s) for s in t.scores]} for t in tracks])
        return tracks

    def _video(self) -> Path:
        """The sequence as a video file (the tracker reads videos): img1/ frames go into a lossless FFV1 file."""
        if self.seq.video is not None:
            return self.seq.video
        import cv2

        path = (self.cache.root or Path(".")) / f"frames-{DiskCache.key(self._frames_key)}.mkv"
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.mkv")
        writer = None
        try:
            for _, image in ds.iter_frames(self.seq, set(range(self.seq.num_frames))):
                if writer is None:
                    h, w = image.shape[:2]
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"FFV1"), 10, (w, h))
                    if not writer.isOpened():
                        raise InputError("could not write a temporary FFV1 video for the tracker (OpenCV build "
                                         "without FFmpeg?)")
                writer.write(image)
        finally:
            if writer is not None:
                writer.release()
        tmp.replace(path)
        return path

    def tracker_means(self, model: str, settings: EvalSettings) -> TrackMeans:
        """Each crop's predicted-track mean feature (within its pseudo-camera), where the tracker matched it."""
        p = self.protocol
        tracks = self.tracks()
        flat: list[Track] = [t for cam in tracks for t in cam]
        frames = np.array([f for t in flat for f in t.frames], np.int64)
        boxes = [b for t in flat for b in t.boxes]
        owner = np.array([i for i, t in enumerate(flat) for _ in t.frames], np.int64)
        if len(boxes) == 0:  # nobody detected: every crop keeps its own feature
            dim = self.item_features(model, settings)[0].shape[1]
            return TrackMeans(np.zeros((len(p.query), dim), np.float32), np.zeros((len(p.gallery), dim), np.float32),
                              np.zeros(len(p.query), bool), np.zeros(len(p.gallery), bool))
        f = self._features(model, settings, "track-boxes", frames, boxes)
        means = feat.group_means(f, owner)
        track_mean = np.zeros((len(flat), f.shape[1]), np.float32)
        track_mean[owner] = means
        offsets = np.cumsum([0] + [len(c) for c in tracks])

        def side(items: ds.Items) -> tuple[np.ndarray, np.ndarray]:
            out = np.zeros((len(items), f.shape[1]), np.float32)
            ok = np.zeros(len(items), bool)
            assert items.frames is not None, "MOT items have frames"
            for cam, cam_tracks in enumerate(tracks):
                sel = np.flatnonzero(items.camids == cam)
                if len(sel) == 0 or not cam_tracks:
                    continue
                a = feat.assign_to_tracks(items.frames[sel], [items.boxes[i] for i in sel], cam_tracks)
                hit = a.track_index >= 0
                out[sel[hit]] = track_mean[offsets[cam] + a.track_index[hit]]
                ok[sel[hit]] = True
            return out, ok

        qm, q_ok = side(p.query)
        gm, g_ok = side(p.gallery)
        return TrackMeans(qm, gm, q_ok, g_ok)

    # -- putting it together

    def features(self, settings: EvalSettings) -> tuple[np.ndarray, np.ndarray, float | None]:
        """Final query and gallery features for `settings` (before query expansion), and the track coverage."""
        qs, gs = [], []
        coverage = None
        for model in settings.models:
            qf, gf = self.item_features(model, settings)
            if settings.tracks == "oracle":
                qm, gm = self.oracle_means(model, settings)
                qf, gf = feat.blend(qf, qm, settings.track_weight), feat.blend(gf, gm, settings.track_weight)
            elif settings.tracks == "tracker":
                tm = self.tracker_means(model, settings)
                qf, gf = qf.copy(), gf.copy()
                if tm.query_matched.any():
                    qf[tm.query_matched] = feat.blend(qf[tm.query_matched], tm.query[tm.query_matched],
                                                      settings.track_weight)
                if tm.gallery_matched.any():
                    gf[tm.gallery_matched] = feat.blend(gf[tm.gallery_matched], tm.gallery[tm.gallery_matched],
                                                        settings.track_weight)
                coverage = tm.coverage
            qs.append(qf)
            gs.append(gf)
        return _ensemble(qs), _ensemble(gs), coverage

    def run(self, settings: EvalSettings, out_dir: str | Path | None = None, with_verification: bool = True,
            save_features: str | Path | None = None) -> EvalReport:
        settings.check()
        t0 = time.perf_counter()
        e0, tr0 = self.embeddings.seconds, self.track_seconds
        qf, gf, coverage = self.features(settings)
        t1 = time.perf_counter()
        p = self.protocol
        scored = score(qf, gf, p.query, p.gallery, settings, with_verification)
        t2 = time.perf_counter()
        counts = p.counts()
        info = DatasetInfo("mot", self.seq.name, str(self.seq.root), len(p.query), len(p.gallery), p.identity,
                           tuple(asdict(counts).items()))
        notes = []
        if self.frames is not None:
            notes.append(f"only ground-truth boxes in frames {self.frames[0]}-{self.frames[1]} are scored")
        if p.identity == "person":
            assert self.seq.persons_path is not None, "person identities come from persons.json"
            notes.append(f"identities are persons from {self.seq.persons_path.name} ({counts.identities}), so a "
                         f"query must also find the person's other visits")
        if settings.tracks == "tracker" and coverage is not None:
            notes.append(f"the project tracker (run on each pseudo-camera separately) matched {coverage:.1%} of the "
                         f"crops at IoU >= {feat.MATCH_IOU}; the rest keep their own feature")
        timings = Timings(self.embeddings.seconds - e0, self.track_seconds - tr0, t2 - t1, t2 - t0)
        report = EvalReport(info, settings, scored.rank, scored.verification, timings, notes, coverage)
        return _finish(report, save_features, qf, gf, p.query, p.gallery, out_dir)


def evaluate_mot(root: str | Path, settings: EvalSettings = EvalSettings(), out_dir: str | Path | None = None,
                 use_persons: bool = True, cache: DiskCache | None = None, log: Log = _quiet,
                 frames: tuple[int, int] | None = None) -> EvalReport:
    return MotEvaluation(root, use_persons, cache, log, frames).run(settings, out_dir)


# ---------------------------------------------------------------- Market-1501 layout and feature files


def _image_only(settings: EvalSettings, notes: list[str]) -> EvalSettings:
    if settings.tracks != "none":
        notes.append(f"track features ({settings.tracks}) need video; this dataset is single images, so they are "
                     f"off for this run")
        return replace(settings, tracks="none")
    return settings


def image_features(emb: Embeddings, paths: list[str], model: str, settings: EvalSettings) -> np.ndarray:
    """Features of image files, embedded in chunks (bounded memory) and cached by the files' names, sizes and
    mtimes."""
    if not paths:
        raise InputError("no images to embed")
    sig = hashlib.sha256()
    for path in paths:
        st = Path(path).stat()
        sig.update(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode())
    parts = []
    for s in range(0, len(paths), EMBED_CHUNK):
        chunk = paths[s:s + EMBED_CHUNK]
        key = f"market:{sig.hexdigest()}:{s}:{len(chunk)}"
        parts.append(emb.get(model, settings.backend, settings.flip, key, partial(ds.read_images, chunk)))
    return np.concatenate(parts)


def evaluate_market(root: str | Path, settings: EvalSettings = EvalSettings(), out_dir: str | Path | None = None,
                    cache: DiskCache | None = None, log: Log = _quiet,
                    save_features: str | Path | None = None) -> EvalReport:
    settings.check()
    notes: list[str] = []
    settings = _image_only(settings, notes)
    cache = cache if cache is not None else default_cache()
    t0 = time.perf_counter()
    split = ds.load_market(root)
    emb = Embeddings(cache, log)
    qf = _ensemble([image_features(emb, split.query.paths, m, settings) for m in settings.models])
    gf = _ensemble([image_features(emb, split.gallery.paths, m, settings) for m in settings.models])
    t1 = time.perf_counter()
    scored = score(qf, gf, split.query, split.gallery, settings)
    t2 = time.perf_counter()
    if split.dropped_junk:
        notes.append(f"{split.dropped_junk} junk images (person id -1) dropped")
    info = DatasetInfo("market", root_name(split.root), str(split.root), len(split.query), len(split.gallery),
                       "person", (("junk_dropped", split.dropped_junk),))
    report = EvalReport(info, settings, scored.rank, scored.verification, Timings(emb.seconds, 0.0, t2 - t1, t2 - t0),
                        notes)
    return _finish(report, save_features, qf, gf, split.query, split.gallery, out_dir)


class PetaEvaluation:
    """A PETA subset under its single-shot protocol; features are cached per model and flip and reused across
    settings (re-ranking on or off), so a benchmark embeds each image once per model."""

    def __init__(self, root: str | Path, cache: DiskCache | None = None, log: Log = _quiet):
        self.protocol = ds.load_peta(root)
        self.embeddings = Embeddings(cache if cache is not None else default_cache(), log)

    def features(self, settings: EvalSettings) -> tuple[np.ndarray, np.ndarray]:
        p = self.protocol
        if p.subset == "generic":  # query and gallery are the same images: embed them once
            f = _ensemble([image_features(self.embeddings, p.query.paths, m, settings) for m in settings.models])
            return f, f
        qf = _ensemble([image_features(self.embeddings, p.query.paths, m, settings) for m in settings.models])
        gf = _ensemble([image_features(self.embeddings, p.gallery.paths, m, settings) for m in settings.models])
        return qf, gf

    def run(self, settings: EvalSettings, out_dir: str | Path | None = None, with_verification: bool = True,
            save_features: str | Path | None = None) -> EvalReport:
        settings.check()
        notes: list[str] = []
        settings = _image_only(settings, notes)
        t0 = time.perf_counter()
        e0 = self.embeddings.seconds
        p = self.protocol
        qf, gf = self.features(settings)
        t1 = time.perf_counter()
        scored = score(qf, gf, p.query, p.gallery, settings, with_verification)
        t2 = time.perf_counter()
        counts = p.counts()
        notes.append(f"{p.subset} single-shot protocol: {p.description}")
        notes.append("all persons are scored (no train/test split): nothing in this project is trained on PETA")
        if counts.images_unused:
            notes.append(f"{counts.images_unused} images of the folder are in neither query nor gallery")
        info = DatasetInfo("peta", root_name(p.root), str(p.root), len(p.query), len(p.gallery), "person",
                           tuple(asdict(counts).items()))
        report = EvalReport(info, settings, scored.rank, scored.verification,
                            Timings(self.embeddings.seconds - e0, 0.0, t2 - t1, t2 - t0), notes)
        return _finish(report, save_features, qf, gf, p.query, p.gallery, out_dir)


def evaluate_peta(root: str | Path, settings: EvalSettings = EvalSettings(), out_dir: str | Path | None = None,
                  cache: DiskCache | None = None, log: Log = _quiet,
                  save_features: str | Path | None = None) -> EvalReport:
    return PetaEvaluation(root, cache, log).run(settings, out_dir, save_features=save_features)


def evaluate_features(path: str | Path, settings: EvalSettings = EvalSettings(),
                      out_dir: str | Path | None = None) -> EvalReport:
    """Score a feature file; only the scoring-side settings (metric, AQE, DBA, re-ranking) apply."""
    settings.check()
    t0 = time.perf_counter()
    ff = ds.load_features(path)
    notes = ["features come from the file: model, backend, flip and track settings do not apply"]
    settings = replace(settings, tracks="none")
    scored = score(ff.query_features, ff.gallery_features, ff.query, ff.gallery, settings)
    t1 = time.perf_counter()
    info = DatasetInfo("features", ff.path.stem, str(ff.path), len(ff.query), len(ff.gallery))
    report = EvalReport(info, settings, scored.rank, scored.verification, Timings(0.0, 0.0, t1 - t0, t1 - t0), notes)
    if out_dir is not None:
        write_outputs(report, out_dir)
    return report


def root_name(path: Path) -> str:
    return Path(path).resolve().name


# ---------------------------------------------------------------- outputs


def _finish(report: EvalReport, save_features: str | Path | None, qf: np.ndarray, gf: np.ndarray,
            query: ds.Items, gallery: ds.Items, out_dir: str | Path | None) -> EvalReport:
    """What every protocol does with its report: the features saved on request, the files written on request."""
    if save_features is not None:
        report.files.features = str(ds.save_features(save_features, qf, gf, query, gallery))
    if out_dir is not None:
        write_outputs(report, out_dir)
    return report


def write_outputs(report: EvalReport, out_dir: str | Path) -> None:
    """report.json, cmc.png and roc.png (when the verification view exists) into out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    label = f"{report.dataset.name}: {report.settings.label()}"
    report.files.cmc_png = str(plots.plot_cmc([plots.cmc_curve(label, report.rank.cmc)], out / "cmc.png",
                                                 f"CMC, {report.dataset.name}"))
    if report.verification is not None:
        report.files.roc_png = str(plots.plot_roc([plots.roc_curve(label, report.verification.roc)],
                                                     out / "roc.png", f"ROC, {report.dataset.name}"))
    report.files.report_json = str(out / "report.json")
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=1))


def summary_rows(report: EvalReport) -> list[tuple[str, str]]:
    """(name, value) pairs for a readable table, in display order."""
    r = report.rank
    rows = [("mAP", f"{r.mAP:.4f}"), ("mINP", f"{r.mINP:.4f}")]
    rows += [(f"rank-{k}", f"{r.rank(k):.4f}") for k in CMC_RANKS]
    rows.append(("queries evaluated", f"{r.num_evaluated} of {r.num_query} ({r.num_skipped} without a true match)"))
    rows.append(("gallery", str(report.dataset.num_gallery)))
    v = report.verification
    if v is not None:
        for pt in v.points:
            rows.append((f"TAR @ FAR {pt.far_target:.0e}", "n/a (too few impostor pairs)" if pt.tar is None
                         else f"{pt.tar:.4f}"))
        rows.append(("EER", f"{v.eer:.4f}"))
    return rows
