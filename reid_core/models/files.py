"""Trained-model files: what training writes and the embedder loads by name.

A trained model NAME lives in `NAME.pt`, looked up in reid_core.weights.search_dirs() order ($REID_WEIGHTS_DIR,
./weights/, ../shared/weights/). The file is a plain dict that `torch.load(..., weights_only=True)` reads:

    {"format": "reid-studio-model/1", "arch": "bot_r50", "dim": 2048, "num_classes": 751,
     "options": {"pooling": "gem", "stem_pool": "torchvision"}, "state_dict": {...}, "meta": {...}}

`options` are the network's build options (empty for OSNet); `meta` is the trainer's free-form record (data set,
epochs, metrics...), restricted to str/int/float/bool/None/list/dict so the file stays loadable without pickle code.
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from reid_core.errors import InputError, WeightsError
from reid_core.weights import PROJECT_ROOT, manifest, search_dirs

if TYPE_CHECKING:
    from reid_core.models.network import ReIDNetwork

# torch and the networks are imported inside the functions that need them: name lookups stay torch-free.

MODEL_FORMAT = "reid-studio-model/1"
SUFFIX = ".pt"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


# ---------------------------------------------------------------- names and places


def validate_name(name: str) -> str:
    """Return `name` if it can name a trained model: letters, digits, '_', '-', '.', starting with a letter or digit,
    at most 100 characters, and not a model of weights/manifest.json (those names are taken)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.endswith(SUFFIX):
        raise InputError(f"invalid model name {name!r}: use letters, digits, '_', '-' and '.', starting with a "
                         f"letter or digit, at most 100 characters, without the {SUFFIX} suffix")
    if name in manifest():
        raise InputError(f"model name {name!r} is taken by weights/manifest.json; choose another")
    return name


def default_output_dir() -> Path:
    """Where training writes models: $REID_WEIGHTS_DIR if set, else the project's weights/ folder."""
    env = os.environ.get("REID_WEIGHTS_DIR")
    return Path(env).expanduser() if env else PROJECT_ROOT / "weights"


def trained_path(name: str, out_dir: str | Path | None = None) -> Path:
    """Where a model called `name` is written (validated name; default_output_dir() unless out_dir)."""
    return Path(out_dir if out_dir is not None else default_output_dir()) / f"{validate_name(name)}{SUFFIX}"


def find_trained(name: str) -> Path:
    """The file of trained model `name`: the first `name.pt` in search_dirs() order."""
    try:
        validate_name(name)
    except InputError as e:
        raise WeightsError(f"no trained model {name!r}: {e}") from None
    dirs = search_dirs()
    for d in dirs:
        path = d / f"{name}{SUFFIX}"
        if path.is_file():
            return path
    raise WeightsError(f"trained model {name!r}: file {name}{SUFFIX} not found. Looked in (in order): "
                       + ", ".join(str(d) for d in dirs)
                       + ". Train one with `reid train` or point $REID_WEIGHTS_DIR at the folder that holds it.")


def list_trained() -> dict[str, Path]:
    """Every trained-model name found (valid `*.pt` names outside the manifest), first folder in search order wins.
    Names only: a foreign .pt file shows up here and is refused when loaded."""
    found: dict[str, Path] = {}
    taken = set(manifest())
    for d in search_dirs():
        if not d.is_dir():
            continue
        for path in sorted(d.glob(f"*{SUFFIX}")):
            name = path.name[:-len(SUFFIX)]
            if name not in found and name not in taken and _NAME.fullmatch(name) and path.is_file():
                found[name] = path
    return found


# ---------------------------------------------------------------- writing and reading


def _plain(value, where: str = "meta"):
    """A copy of `value` made of the types weights_only loading accepts; InputError naming the first bad item."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InputError(f"{where} keys must be strings, got {k!r}")
            out[k] = _plain(v, f"{where}[{k!r}]")
        return out
    raise InputError(f"{where} is a {type(value).__name__}; model files keep only str/int/float/bool/None/list/dict "
                     f"(convert numpy numbers with float() or int())")


def save_model(path: str | Path, network: ReIDNetwork, meta: Mapping | None = None) -> Path:
    """Write `network` (weights, classifier included) and `meta` atomically: a temporary file renamed over `path`,
    so a reader never sees half a model and a crash leaves the previous file intact."""
    import torch

    path = Path(path)
    payload = {
        "format": MODEL_FORMAT,
        "arch": network.arch,
        "dim": int(network.dim),
        "num_classes": int(network.num_classes),
        "options": _plain(network.options(), "options"),
        "state_dict": {k: v.detach().to("cpu", copy=True).contiguous() for k, v in network.state_dict().items()},
        "meta": _plain(dict(meta or {})),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def torch_load(path: Path, *, trusted: bool = False, unsafe_hint: str = "") -> object:
    """torch.load on the CPU, with weights_only unless `trusted` (no code from the pickle runs), every failure turned
    into a WeightsError that says whether the file is damaged or holds objects safe loading refuses."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as e:
        text = str(e)
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if found:  # a readable pickle that names a class or function safe loading does not allow
            raise WeightsError(f"{path} pickles objects other than tensors and plain containers ({found.group(1)}), "
                               f"so safe loading refused it: {unsafe_hint}") from None
        raise WeightsError(f"{path} cannot be read (truncated, corrupt or not a torch file)") from None
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise WeightsError(f"{path} cannot be read (truncated, corrupt or not a torch file): {first}") from None


def read_model_file(path: str | Path) -> dict:
    """The checked payload of a model file (WeightsError for a missing, corrupt or foreign file)."""

    from reid_core.models.network import ARCHS

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"model file {path} not found")
    obj = torch_load(path, unsafe_hint="it is not a reid-studio model file")
    if not isinstance(obj, Mapping) or obj.get("format") != MODEL_FORMAT:
        found = obj.get("format") if isinstance(obj, Mapping) else type(obj).__name__
        raise WeightsError(f"{path} is not a reid-studio model file (format {found!r}, expected {MODEL_FORMAT!r}); "
                           f"checkpoints from other projects are imported with reid_core.models loaders")
    problems = []
    if obj.get("arch") not in ARCHS:
        problems.append(f"unknown arch {obj.get('arch')!r}")
    if not isinstance(obj.get("state_dict"), Mapping):
        problems.append("no state_dict")
    if not isinstance(obj.get("options", {}), Mapping):
        problems.append("options is not a dict")
    if problems:
        raise WeightsError(f"{path}: damaged model file: {'; '.join(problems)}")
    return dict(obj)


def load_model(path: str | Path) -> tuple[ReIDNetwork, dict]:
    """(network in eval mode, meta) from a file save_model wrote."""
    from torch import nn

    from reid_core.models.network import build_network

    payload = read_model_file(path)
    state = payload["state_dict"]
    try:
        network = build_network(payload["arch"], 0, **dict(payload.get("options") or {}))
    except InputError as e:
        raise WeightsError(f"{path}: {e}") from None
    if "classifier.weight" in state:
        # Rebuilt to the stored shape: bias-free from reset_classifier, or torchreid's biased one for imported OSNet.
        n, d = state["classifier.weight"].shape
        network.classifier = nn.Linear(d, n, bias="classifier.bias" in state)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"{path}: weights do not fit a {payload['arch']} network: "
                           f"{' '.join(str(e).split())[:600]}") from None
    if int(payload.get("dim", network.dim)) != network.dim:
        raise WeightsError(f"{path}: file says dim {payload['dim']}, the {payload['arch']} network gives {network.dim}")
    return network.eval(), dict(payload.get("meta") or {})
