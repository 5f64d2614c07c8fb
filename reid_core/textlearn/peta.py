"""PETA as training data for the text branch: images, labels per identity, a seeded split by identity, features.

Layout (../shared/data/peta/SOURCE.txt): one folder per subset with images and Label.txt, one line per identity,
"<id> <attribute> ...". The id is the image name's prefix up to the first "_" or ".". Labels are per identity, so
every image of a person carries the same labels, and a split must be by identity or the held-out part leaks.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reid_core.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
SPLITS = ("train", "val", "test")
# Shares of identities per subset (seeded); val picks head weights and fusion weights, test is only ever scored.
SPLIT_SHARES = (0.6, 0.1, 0.3)


@dataclass(frozen=True)
class PetaImage:
    path: str
    subset: str
    person: str  # "<subset>/<id>": ids repeat across subsets
    labels: frozenset[str]


@dataclass(frozen=True)
class PetaData:
    root: str
    images: tuple[PetaImage, ...]

    @property
    def persons(self) -> list[str]:
        return sorted({im.person for im in self.images})

    def labels_of(self) -> dict[str, frozenset[str]]:
        return {im.person: im.labels for im in self.images}


def _image_id(name: str) -> str:
    return re.split(r"[_.]", name, maxsplit=1)[0]


def load_peta(root: str | Path) -> PetaData:
    """Every labelled image under root (a folder of subset folders, or one subset folder)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder; pass the PETA folder (subset folders with Label.txt inside)")
    folders = [root] if (root / "Label.txt").is_file() else sorted(p for p in root.iterdir()
                                                                 if (p / "Label.txt").is_file())
    if not folders:
        raise InputError(f"{root}: no Label.txt here or in its subfolders; is this the PETA folder?")
    images = []
    for folder in folders:
        labels = {}
        for line in (folder / "Label.txt").read_text().splitlines():
            parts = line.split()
            if parts:
                labels[parts[0]] = frozenset(parts[1:])
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES and _image_id(path.name) in labels:
                pid = _image_id(path.name)
                images.append(PetaImage(str(path), folder.name, f"{folder.name}/{pid}", labels[pid]))
    if not images:
        raise InputError(f"{root}: Label.txt found but no image named after one of its ids")
    return PetaData(str(root), tuple(images))


def split_persons(data: PetaData, seed: int = 0) -> dict[str, str]:
    """person -> "train" | "val" | "test", drawn per subset so each subset is represented in every part."""
    out: dict[str, str] = {}
    rng = np.random.default_rng(seed)
    by_subset: dict[str, list[str]] = {}
    for p in data.persons:
        by_subset.setdefault(p.split("/")[0], []).append(p)
    for subset in sorted(by_subset):
        persons = list(rng.permutation(by_subset[subset]))
        n_train = int(round(SPLIT_SHARES[0] * len(persons)))
        n_val = int(round(SPLIT_SHARES[1] * len(persons)))
        for i, p in enumerate(persons):
            out[str(p)] = "train" if i < n_train else "val" if i < n_train + n_val else "test"
    return out


def _read_rgb(path: str) -> np.ndarray:
    import cv2

    from reid_core.crops import to_model_input

    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{path}: not a readable image")
    return to_model_input(bgr)


@dataclass(frozen=True)
class PetaFeatures:
    """Features of data.images in order: plain and of the mirrored image (a free augmentation for training)."""

    embedder: str
    plain: np.ndarray  # (N, D) float32, L2-normalised
    flipped: np.ndarray


def embed_peta(data: PetaData, embedder: str, cache: Path | None = None, log=print,
               batch: int = 64) -> PetaFeatures:
    """Embed every image with the store's embedder (crops prepared as at ingest), cached per embedder + file list."""
    from reid_core.embedding import load_embedder
    from reid_core.offline import cache_dir

    digest = hashlib.sha256(("\n".join([embedder] + [im.path for im in data.images])).encode()).hexdigest()[:20]
    folder = cache if cache is not None else cache_dir() / "peta-features"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}.npz"
    if path.is_file():
        z = np.load(path)
        if z["plain"].shape[0] == len(data.images):
            return PetaFeatures(embedder, z["plain"], z["flipped"])
    model = load_embedder(embedder)
    plain, flipped = [], []
    for start in range(0, len(data.images), batch):
        crops = np.stack([_read_rgb(im.path) for im in data.images[start:start + batch]])
        plain.append(model.embed(crops))
        flipped.append(model.embed(np.ascontiguousarray(crops[:, :, ::-1])))
        if log and (start // batch) % 10 == 0:
            log(f"embedding PETA with {embedder}: {min(start + batch, len(data.images))}/{len(data.images)}")
    feats = PetaFeatures(embedder, np.concatenate(plain).astype(np.float32),
                         np.concatenate(flipped).astype(np.float32))
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, plain=feats.plain, flipped=feats.flipped)
    tmp.replace(path)
    return feats
