"""Training data: labelled crops from a Market-layout folder or from the store's tracks, their augmentations,
and the identity-balanced (P identities x K crops) batch sampler the metric losses need.

Crops are read lazily (a JPEG from LMDB or a file per item), so a large store never has to fit in memory.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from reid_core.crops import CROP_H, CROP_W
from reid_core.errors import InputError
from reid_core.images import IMAGE_SUFFIXES, IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class TrainSample:
    """One training crop. `source` is a file path (folder data) or a store crop key (store data)."""

    source: str
    label: int  # identity / pseudo-identity, 0..num_classes-1 (-1: unlabelled, MoCo only)
    camera: str = ""
    frame: int = -1
    track: int = -1  # store track id, for store data


@dataclass
class TrainData:
    samples: list[TrainSample]
    num_classes: int
    origin: str  # "folder:PATH" or "store:PATH"
    store_path: str | None = None  # set for store data: where `source` keys are read from
    # (num_classes, num_classes) bool: pairs of labels known to be different people. None: all different labels.
    known_different: np.ndarray | None = None

    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.samples], np.int64)


# ---------------------------------------------------------------- sources


def folder_samples(root: str | Path, labelled: bool = True) -> TrainData:
    """Images of a Market-1501-layout training folder (`bounding_box_train/` inside `root`, or `root` itself).

    labelled: identities from the `PID_cCAM...` file names (junk -1 and distractors 0 are skipped), relabelled
    0..N-1. Unlabelled (for MoCo): every image under `root`, any name.
    """
    from reid_core.evaluation.datasets import MARKET_NAME

    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder")
    folder = root / "bounding_box_train" if (root / "bounding_box_train").is_dir() else root
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    if not labelled:
        return TrainData([TrainSample(str(p), -1) for p in files], 0, f"folder:{folder}")
    raw = []
    for p in files:
        m = MARKET_NAME.match(p.name)
        if m is None:
            raise InputError(f"{p.name}: expected a Market-style name PID_cCAM... (e.g. 0002_c1s1_000451_03.jpg); "
                             f"use an unlabelled objective for images without identities")
        pid = int(m.group(1))
        if pid > 0:
            raw.append((str(p), pid, f"c{m.group(2)}"))
    relabel = {pid: i for i, pid in enumerate(sorted({pid for _, pid, _ in raw}))}
    if len(relabel) < 2:
        raise InputError(f"{folder}: need at least 2 identities to train, found {len(relabel)}")
    return TrainData([TrainSample(path, relabel[pid], cam) for path, pid, cam in raw], len(relabel),
                     f"folder:{folder}")


def store_samples(store_path: str | Path, video_id: str | None = None, from_frame: int | None = None,
                  to_frame: int | None = None) -> TrainData:
    """Every stored crop of complete ingests (optionally one video / frame range), labelled by its track."""
    from reid_core.store import Store

    store = Store(store_path)
    tracks = sorted(store.tracks(video_id, from_frame, to_frame), key=lambda t: t.track_id)
    if not tracks:
        raise InputError(f"the store at {store_path} has no tracks"
                         + (" in that range" if from_frame is not None or to_frame is not None else "")
                         + "; ingest a video first (reid ingest VIDEO)")
    samples = [TrainSample(key, i, t.camera, frame, t.track_id)
               for i, t in enumerate(tracks) for key, frame in zip(t.keys, t.frames)]
    return TrainData(samples, len(tracks), f"store:{store_path}", str(store_path))


# ---------------------------------------------------------------- reading and augmenting


class CropReader:
    """Native-resolution RGB uint8 crops from files or from the store, opened lazily once per process
    (an LMDB handle must not cross a fork into DataLoader workers)."""

    def __init__(self, store_path: str | None = None):
        self.store_path = store_path
        self._store = None
        self._pid = -1

    def _open(self):
        if self._store is None or self._pid != os.getpid():
            from reid_core.store import Store

            self._store, self._pid = Store(self.store_path), os.getpid()
        return self._store

    def read(self, source: str) -> np.ndarray:
        bgr: np.ndarray | None
        if self.store_path is not None:
            from reid_core.crops import decode_image

            (crop,) = self._open().get_crops([source])
            bgr = decode_image(crop.jpeg)
        else:
            bgr = cv2.imread(source, cv2.IMREAD_COLOR)
            if bgr is None:
                raise InputError(f"{source}: not a readable image")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def supervised_transform():
    """BoT's recipe: resize, flip, pad + random crop, ImageNet normalisation, random erasing."""
    from torchvision.transforms import v2 as T

    return T.Compose([
        T.Resize((CROP_H, CROP_W), antialias=True),
        T.RandomHorizontalFlip(),
        T.Pad(10),
        T.RandomCrop((CROP_H, CROP_W)),
        T.ToDtype(torch.float32, scale=True),
        T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        T.RandomErasing(p=0.5, value=0),
    ])


def contrastive_transform():
    """MoCo v2's augmentations adapted to people: the crop keeps a person's aspect ratio and most of the body
    (a crop of 20% of a pedestrian is often just background), colour is jittered, grey-scaled, blurred."""
    from torchvision.transforms import v2 as T

    return T.Compose([
        T.RandomResizedCrop((CROP_H, CROP_W), scale=(0.4, 1.0), ratio=(0.35, 0.65), antialias=True),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(9, sigma=(0.1, 2.0))], p=0.5),
        T.ToDtype(torch.float32, scale=True),
        T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        T.RandomErasing(p=0.3, value=0),
    ])


def eval_transform():
    from torchvision.transforms import v2 as T

    return T.Compose([T.Resize((CROP_H, CROP_W), antialias=True), T.ToDtype(torch.float32, scale=True),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class CropDataset(Dataset):
    """(image tensor, label, index); with views=2, two independent augmentations of the same crop (MoCo)."""

    def __init__(self, data: TrainData, transform, views: int = 1):
        self.data, self.transform, self.views = data, transform, views
        self.reader = CropReader(data.store_path)

    def __len__(self) -> int:
        return len(self.data.samples)

    def __getitem__(self, index: int):
        sample = self.data.samples[index]
        image = torch.from_numpy(self.reader.read(sample.source)).permute(2, 0, 1).contiguous()
        if self.views == 1:
            return self.transform(image), sample.label, index
        return tuple(self.transform(image) for _ in range(self.views)), sample.label, index


# ---------------------------------------------------------------- sampling


class PKSampler(Sampler[int]):
    """Batches of P identities x K crops each, split across distributed ranks.

    An identity with fewer than K crops is sampled with replacement; a long track is spread over several batches.
    The order depends only on (seed, epoch), so every rank builds the same global list and takes its own batches,
    and a resumed run sees the same batches it would have seen.
    """

    def __init__(self, labels: Sequence[int] | np.ndarray, p: int, k: int, seed: int = 0, rank: int = 0,
                 world_size: int = 1):
        labels = np.asarray(labels)
        self.by_label: dict[int, np.ndarray] = {int(v): np.flatnonzero(labels == v) for v in np.unique(labels)}
        if len(self.by_label) < 2:
            raise InputError(f"PK sampling needs at least 2 identities, got {len(self.by_label)}")
        # With fewer identities than P (a small site), K grows so the batch keeps its size and the triplet loss
        # keeps enough positives and negatives per anchor.
        self.p = min(p, len(self.by_label))
        self.k = k if self.p == p else min(4 * k, -(-p * k // self.p))
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    @property
    def batch_size(self) -> int:
        return self.p * self.k

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _groups(self, label: int, rng: np.random.Generator) -> list[np.ndarray]:
        idx = rng.permutation(self.by_label[label])
        if len(idx) < self.k:
            idx = np.concatenate([idx, rng.choice(idx, self.k - len(idx))])
        return [idx[start:start + self.k] for start in range(0, len(idx) - self.k + 1, self.k)]

    def _global_batches(self) -> list[list[int]]:
        """An epoch is (all crops / batch size) batches. Identities are drawn in proportion to the K-groups they
        have left, so long tracks are spread over the epoch; an identity that runs out is refilled with a fresh
        shuffle of its crops (with few identities the smallest would otherwise end the epoch after a few batches)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        labels = sorted(self.by_label)
        groups = {label: self._groups(label, rng) for label in labels}
        total = sum(len(v) for v in self.by_label.values())
        batches = []
        for _ in range(max(1, total // self.batch_size)):
            for label in labels:
                if not groups[label]:
                    groups[label] = self._groups(label, rng)
            weights = np.array([len(groups[label]) for label in labels], np.float64)
            chosen = rng.choice(len(labels), self.p, replace=False, p=weights / weights.sum())
            batch: list[int] = []
            for i in chosen.tolist():
                batch.extend(int(x) for x in groups[labels[i]].pop())
            batches.append(batch)
        return batches

    def _my_batches(self) -> list[list[int]]:
        batches = self._global_batches()
        usable = len(batches) - len(batches) % self.world_size  # every rank runs the same number of steps
        return batches[self.rank:usable:self.world_size]

    def __iter__(self) -> Iterator[int]:
        for batch in self._my_batches():
            yield from batch

    def __len__(self) -> int:
        return sum(len(b) for b in self._my_batches())
