"""Find model files on local disk and check them against weights/manifest.json. Nothing is ever downloaded."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from reid_core.errors import WeightsError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MANIFEST = PROJECT_ROOT / "weights" / "manifest.json"


@dataclass(frozen=True)
class ModelFiles:
    name: str
    kind: str
    format: str
    root: Path  # the search folder the files were found in
    paths: tuple[Path, ...]
    source: str
    licence: str

    @property
    def path(self) -> Path:
        """The main file (first in the manifest entry)."""
        return self.paths[0]


def search_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("REID_WEIGHTS_DIR"):
        dirs.append(Path(os.environ["REID_WEIGHTS_DIR"]).expanduser())
    dirs.append(PROJECT_ROOT / "weights")
    dirs.append(PROJECT_ROOT.parent / "shared" / "weights")
    return dirs


@lru_cache(maxsize=1)
def manifest() -> dict:
    return json.loads(MANIFEST.read_text())["models"]


@lru_cache(maxsize=64)
def _sha256(path: Path, size: int, mtime: float) -> str:  # size/mtime key the cache so edited files are re-hashed
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_of(path: Path) -> str:
    st = path.stat()
    return _sha256(path, st.st_size, st.st_mtime)


def resolve(name: str) -> ModelFiles:
    """Return where model `name`'s files are; raise one WeightsError naming the file, the folders and the source."""
    models = manifest()
    if name not in models:
        raise WeightsError(f"unknown model {name!r}; known models: {', '.join(sorted(models))}")
    entry = models[name]
    dirs = search_dirs()
    problems: list[str] = []
    for d in dirs:
        candidates = [d / f["path"] for f in entry["files"]]
        if not all(p.is_file() for p in candidates):
            continue
        bad = [p for p, f in zip(candidates, entry["files"]) if sha256_of(p) != f["sha256"]]
        if bad:
            problems.extend(f"{p} has the wrong sha256 (corrupt or a different version)" for p in bad)
            continue
        return ModelFiles(name, entry["kind"], entry["format"], d, tuple(candidates), entry["source"], entry["licence"])
    wanted = ", ".join(f["path"] for f in entry["files"])
    lines = [f"model {name!r}: file(s) {wanted} not found or not valid."]
    lines += [f"  {p}" for p in problems]
    lines.append("Looked in (in order): " + ", ".join(str(d) for d in dirs))
    lines.append(f"Get it from {entry['source']} (licence: {entry['licence']}), check sha256 against "
                 f"weights/manifest.json, and put it in one of those folders or point $REID_WEIGHTS_DIR at it.")
    raise WeightsError("\n".join(lines))


def available(kind: str | None = None) -> dict[str, ModelFiles | WeightsError]:
    """Every manifest model (optionally of one kind) with where it was found or why not."""
    out: dict[str, ModelFiles | WeightsError] = {}
    for name, entry in manifest().items():
        if kind and entry["kind"] != kind:
            continue
        try:
            out[name] = resolve(name)
        except WeightsError as e:
            out[name] = e
    return out
