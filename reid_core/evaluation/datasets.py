"""What `reid eval` scores: Market-1501-style folders, MOTChallenge sequences turned into a ReID protocol, and plain
feature files. Each loader returns query and gallery `Items` (person ids, camera ids and where each crop comes from);
the runner embeds them.
"""
from __future__ import annotations

import configparser
import math
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from reid_core import crops as crop_ops
from reid_core.errors import InputError
from reid_core.groundtruth import GtBox, load_persons, read_gt
from reid_core.images import IMAGE_SUFFIXES
from reid_core.types import Box

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v")
MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")  # 0001_c1s1_001051_00.jpg, Duke 0005_c2_f0046985.jpg, MSMT 0000_c01_...


@dataclass
class Items:
    """One side (query or gallery) of a protocol: parallel arrays, one entry per crop."""

    pids: np.ndarray  # int64 person ids (-1 junk, 0 distractor in Market; >= 1 for real people)
    camids: np.ndarray  # int64 camera ids (pseudo-cameras for MOT)
    paths: list[str] = field(default_factory=list)  # image files (Market layout)
    frames: np.ndarray | None = None  # 0-based decoded frame per crop (MOT)
    boxes: list[Box] = field(default_factory=list)  # MOT
    tracks: np.ndarray | None = None  # gt track id per crop (MOT), for the oracle-tracking row only

    def __len__(self) -> int:
        return len(self.pids)


@dataclass(frozen=True)
class MotSequence:
    """A MOTChallenge sequence folder, resolved: where frames and ground truth are, and how long it is."""

    root: Path
    name: str
    video: Path | None  # a video file, or None when frames are images in img1/
    image_dir: Path | None
    gt_path: Path
    persons_path: Path | None
    num_frames: int


@dataclass(frozen=True)
class ProtocolCounts:
    queries: int
    gallery: int
    identities: int
    query_identities: int
    cameras: int
    chunk_frames: int
    gt_boxes_used: int
    gt_boxes_too_small: int
    gt_rows_ignored: int  # conf-0 "ignore" rows and non-pedestrian classes


@dataclass
class MotProtocol:
    sequence: MotSequence
    query: Items
    gallery: Items
    chunk_frames: int  # length of one pseudo-camera
    num_cameras: int
    identity: str  # "person" (persons.json) or "track"
    boxes: list[GtBox]  # every usable gt box (>= MIN_HEIGHT), for oracle track features
    box_pids: np.ndarray  # pid of each of `boxes`
    box_cams: np.ndarray
    skipped_small: int
    skipped_ignored: int
    persons: dict[int, str]  # pid -> person name (or "track N")

    def counts(self) -> ProtocolCounts:
        return ProtocolCounts(queries=len(self.query), gallery=len(self.gallery),
                              identities=len(set(self.box_pids.tolist())),
                              query_identities=len(set(self.query.pids.tolist())),
                              cameras=len(set(self.box_cams.tolist())),
                              chunk_frames=self.chunk_frames, gt_boxes_used=len(self.boxes),
                              gt_boxes_too_small=self.skipped_small, gt_rows_ignored=self.skipped_ignored)


@dataclass
class MarketSplit:
    root: Path
    query: Items
    gallery: Items
    dropped_junk: int


# ---------------------------------------------------------------- Market-1501 layout


def _market_items(folder: Path) -> tuple[Items, int]:
    paths, pids, cams, junk = [], [], [], 0
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        m = MARKET_NAME.match(p.name)
        if not m:
            raise InputError(f"{p}: the name does not start with PID_cCAM (e.g. 0001_c1s1_001051_00.jpg); is "
                             f"this a Market-1501 style folder?")
        pid, cam = int(m.group(1)), int(m.group(2))
        if pid == -1:  # junk boxes: dropped from both sides, as the benchmark's own code and torchreid do
            junk += 1
            continue
        paths.append(str(p))
        pids.append(pid)
        cams.append(cam)
    return Items(np.array(pids, np.int64), np.array(cams, np.int64), paths), junk


def load_market(root: str | Path) -> MarketSplit:
    """`query/` and `bounding_box_test/` of a Market-1501 style dataset (DukeMTMC-reID, MSMT17, CUHK03 converted)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    query_dir, gallery_dir = root / "query", root / "bounding_box_test"
    missing = [d.name for d in (query_dir, gallery_dir) if not d.is_dir()]
    if missing:
        raise InputError(f"{root}: missing {', '.join(missing)}/ (a Market-1501 layout has query/ and "
                         f"bounding_box_test/)")
    query, jq = _market_items(query_dir)
    gallery, jg = _market_items(gallery_dir)
    if len(query) == 0 or len(gallery) == 0:
        raise InputError(f"{root}: no images in query/ ({len(query)}) or bounding_box_test/ ({len(gallery)})")
    return MarketSplit(root, query, gallery, jq + jg)


def read_images(paths: list[str]) -> np.ndarray:
    """Image files -> (N, 256, 128, 3) RGB uint8 model inputs."""
    out = np.empty((len(paths), crop_ops.CROP_H, crop_ops.CROP_W, 3), np.uint8)
    for i, p in enumerate(paths):
        image = cv2.imread(p, cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{p}: not a readable image")
        out[i] = crop_ops.to_model_input(image)
    return out


# ---------------------------------------------------------------- MOTChallenge as ReID

MIN_HEIGHT = 32  # px: smaller boxes are too few pixels to identify anyone
NUM_CAMERAS = 8  # time chunks standing in for cameras
MIN_QUERY_BOXES = 3
GALLERY_STEP = 5
SHORT_SEQUENCE = 400  # frames; shorter sequences keep every box in the gallery


def find_sequence(root: str | Path) -> MotSequence:
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    gt_path = next((p for p in (root / "gt" / "gt.txt", root / "gt.txt") if p.is_file()), None)
    if gt_path is None:
        raise InputError(f"{root}: no ground truth (expected gt/gt.txt or gt.txt in MOTChallenge format)")
    image_dir = root / "img1" if (root / "img1").is_dir() else None
    video = None
    if image_dir is None or not any(image_dir.iterdir()):
        image_dir = None
        videos = sorted(p for p in root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if not videos:
            raise InputError(f"{root}: no frames (expected img1/ with images, or one video file)")
        if len(videos) > 1:
            raise InputError(f"{root}: several videos ({', '.join(v.name for v in videos)}); keep one per sequence")
        video = videos[0]
    info = configparser.ConfigParser()
    name, num_frames = root.name, 0
    if (root / "seqinfo.ini").is_file():
        info.read(root / "seqinfo.ini")
        name = info.get("Sequence", "name", fallback=name)
        num_frames = info.getint("Sequence", "seqLength", fallback=0)
    if num_frames <= 0:
        if video is not None:
            from reid_core.video import probe

            num_frames = probe(video).frame_count
        else:
            assert image_dir is not None  # no video was looked for: img1/ has files
            num_frames = sum(1 for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    persons = root / "persons.json"
    return MotSequence(root, name, video, image_dir, gt_path, persons if persons.is_file() else None, num_frames)


def load_mot(root: str | Path, use_persons: bool = True, frames: tuple[int, int] | None = None) -> MotProtocol:
    """The MOTChallenge-as-ReID protocol of a sequence (see docs/evaluation.md).

    - gt boxes under 32 px tall are skipped;
    - pseudo-camera = time chunk of ceil(frames / 8) frames;
    - query = the median-frame box of every (identity, chunk) with at least 3 boxes (the lower median for an even
      count, so it is always a real box);
    - gallery = every box whose gt frame number % 5 == 0 (every box when the sequence has <= 400 frames), minus
      the queries;
    - identity = the person from persons.json when the folder has one (re-entries are the same person, so a query
      must find the person's other visits), else the gt track id;
    - frames: (first, last) 0-based decoded frames, inclusive, to score only part of the sequence (e.g. the part
      a model was not adapted on); pseudo-cameras stay those of the whole sequence.
    """
    seq = find_sequence(root)
    all_boxes, ignored = read_gt(seq.gt_path)
    if frames is not None:
        first, last = frames
        if first < 0 or last < first:
            raise InputError(f"frame range {first}-{last} is empty or negative")
        all_boxes = [b for b in all_boxes if first <= b.frame - 1 <= last]
        if not all_boxes:
            raise InputError(f"{seq.gt_path}: no ground-truth box in frames {first}-{last}")
    boxes = [b for b in all_boxes if b.box.h >= MIN_HEIGHT]
    small = len(all_boxes) - len(boxes)
    if not boxes:
        raise InputError(f"{seq.gt_path}: no person box is {MIN_HEIGHT} px tall or more")
    num_frames = max(seq.num_frames, max(b.frame for b in boxes))
    chunk = math.ceil(num_frames / NUM_CAMERAS)

    identity = "track"
    names: dict[int, str] = {}
    track_pid: dict[int, int] = {}
    tracks = sorted({b.track for b in boxes})
    if use_persons and seq.persons_path is not None:
        identity = "person"
        mapping = load_persons(seq.persons_path)
        person_names = sorted(set(mapping.values()))
        pid_of = {n: i + 1 for i, n in enumerate(person_names)}
        for t in tracks:
            if t in mapping:
                track_pid[t] = pid_of[mapping[t]]
            else:  # a track persons.json does not mention is its own person rather than a silent drop
                track_pid[t] = len(person_names) + 1 + len([k for k in track_pid if k not in mapping])
        names = {pid_of[n]: n for n in person_names}
        names.update({track_pid[t]: f"track {t}" for t in tracks if t not in mapping})
    else:
        track_pid = {t: t for t in tracks}
        names = {t: f"track {t}" for t in tracks}

    pids = np.array([track_pid[b.track] for b in boxes], np.int64)
    cams = np.array([(b.frame - 1) // chunk for b in boxes], np.int64)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (p, c) in enumerate(zip(pids, cams)):
        groups[(int(p), int(c))].append(i)
    query_idx = []
    for key in sorted(groups):
        members = sorted(groups[key], key=lambda i: (boxes[i].frame, boxes[i].track))
        if len(members) >= MIN_QUERY_BOXES:
            query_idx.append(members[(len(members) - 1) // 2])
    is_query = np.zeros(len(boxes), bool)
    is_query[query_idx] = True
    every = num_frames <= SHORT_SEQUENCE
    gallery_idx = [i for i, b in enumerate(boxes) if (every or b.frame % GALLERY_STEP == 0) and not is_query[i]]
    if not query_idx or not gallery_idx:
        raise InputError(f"{seq.root}: the protocol gives {len(query_idx)} queries and {len(gallery_idx)} gallery "
                         f"boxes; the sequence is too short or its boxes too small to evaluate")

    def items(idx: list[int]) -> Items:
        return Items(pids[idx], cams[idx], frames=np.array([boxes[i].frame - 1 for i in idx], np.int64),
                     boxes=[boxes[i].box for i in idx], tracks=np.array([boxes[i].track for i in idx], np.int64))

    return MotProtocol(seq, items(query_idx), items(gallery_idx), chunk, int(cams.max()) + 1, identity, boxes, pids,
                       cams, small, ignored, names)


def camera_frame_range(protocol: MotProtocol, cam: int) -> tuple[int, int]:
    """0-based inclusive decoded-frame range of a pseudo-camera."""
    start = cam * protocol.chunk_frames
    return start, min(protocol.sequence.num_frames, start + protocol.chunk_frames) - 1


def iter_frames(seq: MotSequence, wanted: set[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(0-based frame index, BGR image) for the wanted frames, in order, decoding the video once."""
    if not wanted:
        return
    if seq.video is not None:
        from reid_core.video import read_frames

        last = max(wanted)
        for index, image in read_frames(seq.video, min(wanted), last):
            if index in wanted:
                yield index, image
        return
    assert seq.image_dir is not None  # a MotSequence without a video has its frames in img1/
    files = sorted(p for p in seq.image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    for index in sorted(wanted):
        if index >= len(files):
            raise InputError(f"{seq.image_dir}: frame {index + 1} is in the gt but there are only {len(files)} images")
        picture = cv2.imread(str(files[index]), cv2.IMREAD_COLOR)
        if picture is None:
            raise InputError(f"{files[index]}: not a readable image")
        yield index, picture


def cut_crops(seq: MotSequence, frames: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """Model inputs (N, 256, 128, 3) RGB for boxes in frames (0-based), decoding each needed frame once."""
    by_frame: dict[int, list[int]] = defaultdict(list)
    for i, f in enumerate(frames):
        by_frame[int(f)].append(i)
    out = np.empty((len(boxes), crop_ops.CROP_H, crop_ops.CROP_W, 3), np.uint8)
    seen = set()
    for index, image in iter_frames(seq, set(by_frame)):
        for i in by_frame[index]:
            out[i] = crop_ops.to_model_input(crop_ops.cut(image, boxes[i]))
        seen.add(index)
    missing = set(by_frame) - seen
    if missing:
        raise InputError(f"{seq.root}: frames {sorted(missing)[:5]} of the ground truth could not be decoded")
    return out


# ---------------------------------------------------------------- feature files

NPZ_KEYS = {  # canonical name -> accepted spellings (torchreid/FastReID dumps use the short ones)
    "query_features": ("query_features", "qf", "query_feats"),
    "gallery_features": ("gallery_features", "gf", "gallery_feats"),
    "query_pids": ("query_pids", "q_pids", "qpids"),
    "gallery_pids": ("gallery_pids", "g_pids", "gpids"),
    "query_camids": ("query_camids", "q_camids", "qcamids"),
    "gallery_camids": ("gallery_camids", "g_camids", "gcamids"),
}


@dataclass
class FeatureFile:
    path: Path
    query_features: np.ndarray
    gallery_features: np.ndarray
    query: Items
    gallery: Items


def load_features(path: str | Path) -> FeatureFile:
    """An .npz with query/gallery features, person ids and camera ids (see NPZ_KEYS for the accepted names)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise InputError(f"{path}: not a readable .npz file: {e}") from e
    got = {}
    with z:
        for key, names in NPZ_KEYS.items():
            name = next((n for n in names if n in z.files), None)
            if name is None:
                raise InputError(f"{path}: missing {key!r} (also accepted: {', '.join(names[1:])}); the file has "
                                 f"{', '.join(z.files) or 'no arrays'}")
            got[key] = np.asarray(z[name])
    qf, gf = got["query_features"], got["gallery_features"]
    if qf.ndim != 2 or gf.ndim != 2 or qf.shape[1] != gf.shape[1]:
        raise InputError(f"{path}: features must be 2-D with the same width, got {qf.shape} and {gf.shape}")
    for side, feats in (("query", qf), ("gallery", gf)):
        for what in ("pids", "camids"):
            a = got[f"{side}_{what}"]
            if a.ndim != 1 or len(a) != len(feats):
                raise InputError(f"{path}: {side}_{what} must be 1-D with {len(feats)} entries, got {a.shape}")
    if not (np.isfinite(qf).all() and np.isfinite(gf).all()):
        raise InputError(f"{path}: the features contain NaN or infinite values")
    q = Items(got["query_pids"].astype(np.int64), got["query_camids"].astype(np.int64))
    g = Items(got["gallery_pids"].astype(np.int64), got["gallery_camids"].astype(np.int64))
    return FeatureFile(path, qf.astype(np.float32), gf.astype(np.float32), q, g)


def save_features(path: str | Path, qf: np.ndarray, gf: np.ndarray, query: Items, gallery: Items) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, query_features=qf, gallery_features=gf, query_pids=query.pids,
                        gallery_pids=gallery.pids, query_camids=query.camids, gallery_camids=gallery.camids)
    return path


# ---------------------------------------------------------------- PETA subsets (single-shot cross-camera)

# File-name grammars of the PETA copies (data/peta/SOURCE.txt). Matched against the whole stem.
VIPER_NAME = re.compile(r"(\d+)_(\d+)_([12])")  # PPP_ANGLE_CAM
PRID_NAME = re.compile(r"(\d+)_([ab])")  # PPPP_a / PPPP_b
GRID_NAME = re.compile(r"(\d+)_(\d+)_(\d+)_(-?\d+)_(-?\d+)_(\d+)_(\d+)")  # PPPP_CAM_FRAME_x_y_w_h
GENERIC_NAME = re.compile(r"(\d+)_([A-Za-z0-9]+)(?:_.*)?")  # PID_CAM[_anything], e.g. SARC3D 001_front
PRID_SHARED_IDS = 200  # PRID 2011: persons 1-200 are the same people in both cameras; the rest differ
DISTRACTOR_OFFSET = 1_000_000  # pids given to people who must never match a query (PRID b ids > 200)


@dataclass(frozen=True)
class PetaName:
    """What a PETA file name says: person, camera (an int; for the generic grammar the index of its token) and,
    for GRID, the frame on the shared clock."""

    pid: int
    cam: int
    frame: int = -1


@dataclass(frozen=True)
class PetaCounts:
    queries: int
    gallery: int
    query_identities: int
    distractors: int  # gallery images whose person is no query's
    images_in_folder: int
    images_unused: int


@dataclass
class PetaProtocol:
    root: Path
    subset: str  # "viper", "prid", "grid" or "generic"
    query: Items
    gallery: Items
    description: str  # one line: which images are queries, which the gallery
    images_in_folder: int

    def counts(self) -> PetaCounts:
        qids = set(self.query.pids.tolist())
        distractors = int(sum(1 for p in self.gallery.pids.tolist() if p not in qids))
        used = len(self.query) + len(self.gallery)
        if self.subset == "generic":
            used = len(self.query)  # every image is a query and also in the gallery
        return PetaCounts(len(self.query), len(self.gallery), len(qids), distractors, self.images_in_folder,
                          self.images_in_folder - used)


def _peta_images(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def detect_peta_subset(stems: list[str]) -> str | None:
    """The first grammar every name follows: viper, prid, grid, then the generic PID_CAM; None if none does."""
    for subset, grammar in (("viper", VIPER_NAME), ("prid", PRID_NAME), ("grid", GRID_NAME),
                            ("generic", GENERIC_NAME)):
        if stems and all(grammar.fullmatch(s) for s in stems):
            return subset
    return None


def parse_peta_name(subset: str, stem: str, cameras: dict[str, int] | None = None) -> PetaName:
    """One file name under a subset's grammar. `cameras` maps generic camera tokens to ints (filled as met)."""
    if subset == "viper":
        m = VIPER_NAME.fullmatch(stem)
        assert m is not None  # the caller picked the subset whose grammar every stem follows (peta_subset)
        return PetaName(int(m.group(1)), int(m.group(3)))
    if subset == "prid":
        m = PRID_NAME.fullmatch(stem)
        assert m is not None  # the caller picked the subset whose grammar every stem follows (peta_subset)
        return PetaName(int(m.group(1)), 1 if m.group(2) == "a" else 2)
    if subset == "grid":
        m = GRID_NAME.fullmatch(stem)
        assert m is not None  # the caller picked the subset whose grammar every stem follows (peta_subset)
        return PetaName(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    m = GENERIC_NAME.fullmatch(stem)
    assert m is not None  # the caller picked the subset whose grammar every stem follows (peta_subset)
    cameras = {} if cameras is None else cameras
    token = m.group(2).lower()
    return PetaName(int(m.group(1)), cameras.setdefault(token, len(cameras) + 1))


def peta_protocol(subset: str, names: list[PetaName], paths: list[str], root: Path = Path(".")) -> PetaProtocol:
    """The subset's single-shot protocol over parsed names (see docs/evaluation.md, "PETA")."""
    n = len(names)
    pid = np.array([x.pid for x in names], np.int64)
    cam = np.array([x.cam for x in names], np.int64)

    def items(idx, pids=None) -> Items:
        idx = list(idx)
        return Items(pid[idx] if pids is None else np.asarray(pids, np.int64), cam[idx], [paths[i] for i in idx])

    def need_unique(idx, what: str) -> None:
        seen: dict[int, int] = {}
        for i in idx:
            if pid[i] in seen:
                raise InputError(f"{root}: person {pid[i]} has two {what} images ({Path(paths[seen[pid[i]]]).name}, "
                                 f"{Path(paths[i]).name}); this single-shot subset has one per person and camera")
            seen[pid[i]] = i

    if subset == "viper":
        q = [i for i in range(n) if cam[i] == 1]
        g = [i for i in range(n) if cam[i] == 2]
        need_unique(q, "camera-1")
        need_unique(g, "camera-2")
        unmatched = set(pid[q].tolist()) ^ set(pid[g].tolist())
        if unmatched:
            raise InputError(f"{root}: VIPeR has every person in both cameras; {len(unmatched)} are in only one "
                             f"(e.g. {sorted(unmatched)[0]})")
        desc = "camera 1 images as queries, camera 2 images as gallery; one true match per query"
        query, gallery = items(q), items(g)
    elif subset == "prid":
        q = [i for i in range(n) if cam[i] == 1 and pid[i] <= PRID_SHARED_IDS]
        g = [i for i in range(n) if cam[i] == 2]
        need_unique(q, "camera-a")
        need_unique(g, "camera-b")
        if not q or not set(pid[q].tolist()) <= set(pid[g].tolist()):
            raise InputError(f"{root}: PRID queries are camera-a persons 1-{PRID_SHARED_IDS}, each also in camera b; "
                             f"found {len(q)} queries, {len(set(pid[q].tolist()) - set(pid[g].tolist()))} without a "
                             f"camera-b image")
        # b's persons above 200 are other people than a's of the same number: never a true match
        gpids = [pid[i] if pid[i] <= PRID_SHARED_IDS else DISTRACTOR_OFFSET + pid[i] for i in g]
        desc = (f"camera a images of persons 1-{PRID_SHARED_IDS} (seen by both cameras) as queries, all camera b "
                f"images as gallery (persons above {PRID_SHARED_IDS} are distractors)")
        query, gallery = items(q), items(g, gpids)
    elif subset == "grid":
        by_pid: dict[int, list[int]] = defaultdict(list)
        for i in range(n):
            by_pid[int(pid[i])].append(i)
        q, g = [], []
        for p in sorted(by_pid):
            members = sorted(by_pid[p], key=lambda i: (names[i].frame, names[i].cam))
            if len(members) > 2:
                raise InputError(f"{root}: GRID person {p} has {len(members)} images; expected one or two")
            if len(members) == 2:
                first, other = members
                if cam[first] == cam[other]:
                    raise InputError(f"{root}: GRID person {p} is seen twice by camera {cam[first]}; the two "
                                     f"sightings must come from different cameras")
                q.append(first)
            g.extend(members[1:] if len(members) == 2 else members)
        if not q:
            raise InputError(f"{root}: no GRID person is seen twice, so there is nothing to query")
        desc = ("the first sighting (lower frame) of each person seen twice as queries; the other sighting plus "
                "every person seen once (distractors) as gallery")
        query, gallery = items(q), items(sorted(g))
    elif subset == "generic":
        multi = {p for p in set(pid.tolist()) if len(set(cam[pid == p].tolist())) >= 2}
        if not multi:
            raise InputError(f"{root}: no person appears under two cameras in the file names, so there is no "
                             f"cross-camera match to score (one image per person, e.g. PETA's MIT subset?)")
        every = list(range(n))
        desc = ("every image queries all images of the other cameras (same-person same-camera images excluded, as "
                "in Market-1501); queries without a cross-camera match are skipped")
        query, gallery = items(every), items(every)
    else:
        raise InputError(f"unknown PETA subset kind {subset!r}")
    return PetaProtocol(root, subset, query, gallery, desc, n)


def load_peta(root: str | Path) -> PetaProtocol:
    """A PETA subset folder (VIPeR, PRID, GRID, or any whose names are PID_CAM...) under its single-shot protocol."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    files = _peta_images(root)
    if not files:
        raise InputError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}); is this a PETA subset folder?")
    stems = [p.stem for p in files]
    subset = detect_peta_subset(stems)
    if subset is None:
        bad = next(s for s in stems if not GENERIC_NAME.fullmatch(s))
        raise InputError(f"{root}: not a recognised PETA subset: {bad!r} names no person and camera (expected "
                         f"VIPeR PPP_ANGLE_CAM, PRID PPPP_a/b, GRID PPPP_CAM_FRAME_x_y_w_h or PID_CAM...)")
    cameras: dict[str, int] = {}
    names = [parse_peta_name(subset, s, cameras) for s in stems]
    return peta_protocol(subset, names, [str(p) for p in files], root)
