"""Loading other projects' checkpoints into ReIDNetwork, with a report of what went where.

FastReID model-zoo checkpoints (BoT / SBS ResNet-50) -> BoTResNet50
=================================================================

FastReID's Checkpointer saves ``{"model": Baseline.state_dict(), "optimizer": ..., "scheduler": ..., ...}``; the
Baseline module holds ``backbone`` (fastreid/modeling/backbones/resnet.py), ``heads`` (EmbeddingHead, or BNneckHead
in older code) and, in older code, the ``pixel_mean``/``pixel_std`` buffers (newer ones register them
non-persistent, so they are absent). The mapping (a leading ``module.`` from DataParallel is stripped first):

=============================================================  =================================  =================
FastReID key                                                   BoTResNet50 key                    note
=============================================================  =================================  =================
backbone.conv1.weight, backbone.bn1.*                          backbone.conv1.weight, .bn1.*      stem
backbone.layer{1-4}.{i}.{conv1,conv2,conv3,bn1,bn2,bn3}.*      backbone.layer{1-4}.{i}.*          same names
backbone.layer{1-4}.0.downsample.{0,1}.*                       backbone.layer{1-4}.0.downsample.* same names
heads.pool_layer.p                                             pool.p                             GeM (gempoolP)
heads.bottleneck.0.{weight,bias,running_mean,running_var,      bnneck.*                           BNNeck
  num_batches_tracked}
heads.bnneck.*                                                 bnneck.*                           old BNneckHead
heads.weight (EmbeddingHead) or heads.classifier.weight (old)  classifier.weight                  if shapes match
pixel_mean, pixel_std                                          (not loaded)                       checked
=============================================================  =================================  =================

BatchNorm ``*`` = weight, bias, running_mean, running_var, num_batches_tracked (FastReID's BN, GhostBN, SyncBN and
FrozenBN all store these names). Refused, with the offending keys named: IBN-a (``.bn1.IN.*`` / ``.bn1.BN.*``),
squeeze-excitation (``.se.*``), non-local blocks (``backbone.NL_*``), ResNet-101/152 (more blocks in layer3/4),
ResNet-18/34 (BasicBlock, no conv3), a 1x1 reduction conv before the BNNeck (``heads.bottleneck.0.weight`` 4-D,
EMBEDDING_DIM > 0) and keys outside ``backbone./heads.`` (MGN and other meta-architectures). Other ``heads.*`` keys
(classification-loss internals) are ignored with the reason given.

Two things the weights do not say, so the loader sets them and reports it: no ``heads.pool_layer.p`` means
FastReID's GlobalAvgPool (a fixed-p GeM or max pooling config cannot be told apart; check the config), and current
FastReID code pools the stem with ``MaxPool2d(3, 2, ceil_mode=True)`` (no padding) where torchvision pads by one;
pass ``stem_pool="torchvision"`` for checkpoints trained with code that pads (early FastReID, LUPerson's fork).

LUPerson MoCo ResNet-50 (DengpanFu/LUPerson, lup_moco_r50.pth) -> BoTResNet50 backbone
======================================================================================

The released file is read by LUPerson's FastReID fork as a plain ResNet state dict (torchvision names, loaded with
strict=False); MoCo training checkpoints instead hold ``{"state_dict": {"module.encoder_q.conv1.weight": ...,
"module.encoder_k.*", "module.queue", ...}}`` with a projection head under ``encoder_q.fc.*``. Both are accepted, as
is a plain torchvision ImageNet ResNet-50 state dict: containers ``state_dict``/``model`` are unwrapped, prefixes
``module.``, ``encoder_q.``/``base_encoder.`` (MoCo v1-v3) stripped, the key encoder / queue / ``fc.*`` dropped, and
the rest loaded into ``backbone.*`` (every backbone key must be present). Pool, BNNeck and classifier keep their
initialisation.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from reid_core.errors import InputError, WeightsError
from reid_core.models.files import torch_load
from reid_core.models.network import INPUT_MEAN, INPUT_STD, STEM_POOLS, BoTResNet50, OSNetReID, ReIDNetwork

Source = str | Path | Mapping
R50_BLOCKS = (3, 4, 6, 3)
_LIST_LIMIT = 8  # keys quoted per problem in an error message


@dataclass
class LoadReport:
    source: str
    # checkpoint keys are quoted without a DataParallel "module." prefix
    mapped: list[tuple[str, str]] = field(default_factory=list)  # (checkpoint key, network key)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (checkpoint key, why)
    missing: list[str] = field(default_factory=list)  # network keys left at their initial value
    notes: list[str] = field(default_factory=list)  # decisions and warnings a user should read

    def summary(self) -> str:
        lines = [f"{self.source}: {len(self.mapped)} tensors loaded, {len(self.ignored)} ignored, "
                 f"{len(self.missing)} network tensors kept at their initial value"]
        lines += [f"  mapped {src} -> {dst} ({n})" for (src, dst), n in _group_pairs(self.mapped).items()]
        lines += [f"  ignored {k}: {why}" for k, why in self.ignored]
        if self.missing:
            lines.append("  not in the checkpoint: " + _quote(self.missing, 20))
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"source": self.source, "mapped": [list(p) for p in self.mapped],
                "ignored": [list(p) for p in self.ignored], "missing": list(self.missing), "notes": list(self.notes)}


def _group_pairs(pairs: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Collapse key pairs to their renamed prefixes: backbone.* -> backbone.*, heads.bottleneck.0.* -> bnneck.*."""
    groups: dict[tuple[str, str], int] = {}
    for src, dst in pairs:
        sp, dp = src.split("."), dst.split(".")
        if src == dst:
            key = (sp[0] + (".*" if len(sp) > 1 else ""), dp[0] + (".*" if len(dp) > 1 else ""))
        else:
            common = 0
            while common < min(len(sp), len(dp)) - 1 and sp[-1 - common] == dp[-1 - common]:
                common += 1
            tail = ".*" if common else ""
            key = (".".join(sp[:len(sp) - common]) + tail, ".".join(dp[:len(dp) - common]) + tail)
        groups[key] = groups.get(key, 0) + 1
    return groups


def _quote(keys: list[str], limit: int = _LIST_LIMIT) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


# ---------------------------------------------------------------- reading


def read_checkpoint(source: Source, trusted: bool = False) -> tuple[str, Mapping]:
    """(label, raw object) from a path or an in-memory mapping. Files are read with weights_only=True (no code runs
    from the pickle) unless `trusted`, for checkpoints from a source you trust that also pickle other objects."""
    if isinstance(source, Mapping):
        return "<state dict>", source
    path = Path(source).expanduser()
    if not path.is_file():
        raise WeightsError(f"checkpoint {path} not found")
    obj = torch_load(path, trusted=trusted, unsafe_hint="if it comes from a source you trust, load it with "
                                                          "trusted=True")
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path} holds a {type(obj).__name__}, not a state dict or checkpoint dict")
    return str(path), obj


def _unwrap(obj: Mapping, containers: tuple[str, ...]) -> Mapping:
    """Descend through checkpoint containers ({"model": {...}}, {"state_dict": {...}}) to the tensor mapping."""
    for _ in range(3):
        inner = next((obj[c] for c in containers if isinstance(obj.get(c), Mapping)), None)
        if inner is None:
            break
        obj = inner
    return obj


def _tensors(obj: Mapping, label: str) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in obj.items():
        if not isinstance(k, str):
            continue
        if isinstance(v, torch.Tensor):
            out[k.removeprefix("module.")] = v
    if not out:
        raise WeightsError(f"{label} holds no tensors under the expected names (keys: {_quote(list(map(str, obj)))})")
    return out


def _load(network: ReIDNetwork, values: dict[str, torch.Tensor], label: str) -> None:
    own = network.state_dict()
    wrong = [f"{k} {tuple(v.shape)} (network {tuple(own[k].shape)})" for k, v in values.items()
             if tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        raise WeightsError(f"{label}: tensors of the wrong shape for {network.arch}: {_quote(wrong)}")
    with torch.no_grad():
        result = network.load_state_dict(values, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys  # every key was checked against state_dict() above


def _missing(network: ReIDNetwork, loaded: set[str]) -> list[str]:
    return [k for k in network.state_dict() if k not in loaded]


# ---------------------------------------------------------------- FastReID


def _fastreid_incompatibilities(state: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}

    def add(kind: str, key: str) -> None:
        problems.setdefault(kind, []).append(key)

    basic_block = "backbone.layer1.0.conv2.weight" in state and "backbone.layer1.0.conv3.weight" not in state
    for k, v in state.items():
        if k.startswith("backbone."):
            if ".IN." in k or ".BN." in k:
                add("IBN-Net (instance-batch norm) layers", k)
            elif ".se." in k:
                add("squeeze-excitation (SE) layers", k)
            elif k.startswith("backbone.NL_"):
                add("non-local blocks", k)
            elif basic_block and k.startswith("backbone.layer"):
                add("BasicBlock layers (ResNet-18/34, not a Bottleneck ResNet-50)", k)
            else:
                m = re.match(r"backbone\.layer(\d)\.(\d+)\.", k)
                if m and 1 <= int(m.group(1)) <= 4 and int(m.group(2)) >= R50_BLOCKS[int(m.group(1)) - 1]:
                    add("extra residual blocks (a deeper ResNet: 101/152)", k)
        elif k.startswith("heads."):
            if re.fullmatch(r"heads\.bottleneck\.0\.weight", k) and v.dim() == 4:
                add("a 1x1 reduction conv before the BNNeck (EMBEDDING_DIM > 0)", k)
            elif k.startswith("heads.bottleneck.1."):
                add("a 1x1 reduction conv before the BNNeck (EMBEDDING_DIM > 0)", k)
        elif k not in ("pixel_mean", "pixel_std"):
            add("modules outside backbone/heads (not a FastReID Baseline: MGN or another meta-architecture)", k)
    return problems


def _fastreid_target(key: str) -> str | None:
    if key.startswith("backbone."):
        return key
    if key == "heads.pool_layer.p":
        return "pool.p"
    for prefix in ("heads.bottleneck.0.", "heads.bnneck."):
        if key.startswith(prefix):
            return "bnneck." + key[len(prefix):]
    if key in ("heads.weight", "heads.classifier.weight"):
        return "classifier.weight"
    return None


def _check_pixel_stats(state: Mapping, report: LoadReport) -> None:
    for name, expected in (("pixel_mean", INPUT_MEAN), ("pixel_std", INPUT_STD)):
        if name not in state:
            continue
        got = torch.as_tensor(state[name], dtype=torch.float64).flatten().tolist()
        if len(got) == 3 and all(abs(a - b) < 1e-2 for a, b in zip(got, expected)):
            continue
        report.notes.append(
            f"{name} is {[round(x, 3) for x in got]}, not the ImageNet values x255 "
            f"{[round(x, 3) for x in expected]} the embedder normalises crops with: features will not match "
            f"FastReID's own for this checkpoint (values near 0-1 mean a 0-1 input scale; a reversed order means BGR)")


def load_fastreid_checkpoint(source: Source, network: ReIDNetwork, *, stem_pool: str = "fastreid",
                             trusted: bool = False) -> LoadReport:
    """Load a FastReID Baseline ResNet-50 checkpoint (model-zoo .pth, or its state dict) into a bot_r50 network.

    Sets the network's pooling from the checkpoint (GeM when it has heads.pool_layer.p, else average) and its stem
    max-pool to `stem_pool`; raises WeightsError naming the keys of anything this ResNet-50 cannot hold. The
    mapping table is in this module's docstring and docs/training.md."""
    if not isinstance(network, BoTResNet50):
        raise InputError(f"FastReID ResNet-50 checkpoints load into a bot_r50 network, not {network.arch}")
    if stem_pool not in STEM_POOLS:
        raise InputError(f"stem_pool must be one of {', '.join(STEM_POOLS)}, got {stem_pool!r}")
    label, raw = read_checkpoint(source, trusted)
    state = _tensors(_unwrap(raw, ("model", "state_dict")), label)
    report = LoadReport(label)

    problems = _fastreid_incompatibilities(state)
    if problems:
        lines = [f"{label} is a FastReID checkpoint this ResNet-50 (BoT: plain Bottleneck R50 + BNNeck) cannot hold:"]
        lines += [f"  {kind}: {_quote(keys)}" for kind, keys in problems.items()]
        lines.append("Only plain ResNet-50 Baseline checkpoints (bagtricks_R50 / sbs_R50 without IBN, SE or non-local) "
                     "are supported.")
        raise WeightsError("\n".join(lines))

    if "heads.pool_layer.p" in state:
        network.set_pooling("gem")
        p = float(state["heads.pool_layer.p"].flatten()[0])
        report.notes.append(f"pooling set to GeM (checkpoint p = {p:.3f})")
    else:
        network.set_pooling("avg")
        report.notes.append("no heads.pool_layer.p: pooling set to average (FastReID's GlobalAvgPool); a fixed-p GeM "
                            "or max-pooling config looks the same in the weights, so check the model's config")
    network.set_stem_pool(stem_pool)
    report.notes.append(f"stem max-pool set to the {stem_pool} variant"
                        + (" (current FastReID code: ceil_mode, no padding)" if stem_pool == "fastreid" else ""))
    _check_pixel_stats(state, report)

    own = network.state_dict()
    values: dict[str, torch.Tensor] = {}
    unknown_backbone = []
    for key, tensor in state.items():
        if key in ("pixel_mean", "pixel_std"):
            report.ignored.append((key, "input normalisation buffer, checked against the embedder's ImageNet values"))
            continue
        target = _fastreid_target(key)
        if target is None:
            report.ignored.append((key, "FastReID head internals (classification-loss layer) the BoT network has "
                                        "no use for"))
            continue
        if target == "classifier.weight":
            if network.classifier is None:
                report.ignored.append((key, "the network has no classifier (num_classes=0)"))
                continue
            if tuple(tensor.shape) != tuple(own[target].shape):
                report.ignored.append((key, f"classifier for {tensor.shape[0]} identities; the network has "
                                            f"{network.num_classes}"))
                continue
            if key == "heads.weight":
                report.notes.append("heads.weight loaded as the classifier; with FastReID's circle/arcface "
                                    "heads it was trained on normalised features, so its logits scale differs")
        if target not in own:
            unknown_backbone.append(key)
            continue
        values[target] = tensor
        report.mapped.append((key, target))
    if unknown_backbone:
        raise WeightsError(f"{label}: keys with no place in the BoT ResNet-50: {_quote(unknown_backbone)}")
    _load(network, values, label)

    report.missing = _missing(network, set(values))
    absent_weights = [k for k in report.missing if k.startswith("backbone.") and not k.endswith("num_batches_tracked")]
    if absent_weights:
        raise WeightsError(f"{label} lacks backbone tensors (an incomplete or different ResNet): "
                           f"{_quote(absent_weights)}")
    if any(k.startswith("bnneck.") and not k.endswith("num_batches_tracked") for k in report.missing):
        report.notes.append("no BNNeck in the checkpoint (WITH_BNNECK off?): bnneck keeps its initial identity-like "
                            "values, so the embedding is the pooled feature")
    return report


# ---------------------------------------------------------------- LUPerson MoCo / torchvision ImageNet


_MOCO_DROPPED = (
    (re.compile(r"^(encoder_k|momentum_encoder|key_encoder)\."), "MoCo momentum (key) encoder"),
    (re.compile(r"^queue(_ptr)?$"), "MoCo negative-key queue"),
    (re.compile(r"^(fc|head|predictor|projector)\."),
     "projection head / ImageNet classifier, not part of the backbone"),
)


def load_luperson_moco(source: Source, network: ReIDNetwork, *, trusted: bool = False) -> LoadReport:
    """Initialise a bot_r50 backbone from LUPerson's MoCo ResNet-50 (lup_moco_r50.pth), a MoCo training checkpoint,
    or a plain torchvision ResNet-50 state dict (e.g. ImageNet weights from a local file). Pool, BNNeck and
    classifier are left as they are; every backbone tensor must be found."""
    if not isinstance(network, BoTResNet50):
        raise InputError(f"ResNet-50 initialisations load into a bot_r50 network, not {network.arch}")
    label, raw = read_checkpoint(source, trusted)
    state = _tensors(_unwrap(raw, ("state_dict", "model")), label)
    report = LoadReport(label)
    own = network.state_dict()
    query_encoder = any(k.startswith(("encoder_q.", "base_encoder.")) for k in state)
    values: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, tensor in state.items():
        name = key
        if query_encoder:
            if not key.startswith(("encoder_q.", "base_encoder.")):
                outside = next((w for pat, w in _MOCO_DROPPED if pat.match(key)), "outside the MoCo query encoder")
                report.ignored.append((key, outside))
                continue
            name = key.split(".", 1)[1]
        name = name.removeprefix("backbone.")
        why = next((w for pat, w in _MOCO_DROPPED if pat.match(name)), None)
        if why is not None:
            report.ignored.append((key, why))
            continue
        target = "backbone." + name
        if target not in own:
            unknown.append(key)
            continue
        values[target] = tensor
        report.mapped.append((key, target))
    if unknown:
        raise WeightsError(f"{label}: keys a plain torchvision ResNet-50 does not have (IBN, SE, another depth?): "
                           f"{_quote(unknown)}")
    _load(network, values, label)
    report.missing = _missing(network, set(values))
    absent = [k for k in report.missing if k.startswith("backbone.") and not k.endswith("num_batches_tracked")]
    if absent:
        raise WeightsError(f"{label} lacks ResNet-50 backbone tensors: {_quote(absent)}")
    report.notes.append("pool, BNNeck and classifier keep their initialisation (the checkpoint has only a backbone)")
    return report


# ---------------------------------------------------------------- torchreid OSNet


def load_torchreid_osnet(source: Source, network: ReIDNetwork, *, trusted: bool = False) -> LoadReport:
    """Load a torchreid OSNet state dict or checkpoint ({"state_dict": ...}) into an osnet network: every feature
    tensor strictly; the classifier only when its shape matches the network's (else reported as ignored)."""
    if not isinstance(network, OSNetReID):
        raise InputError(f"torchreid OSNet checkpoints load into an osnet_x0_25 network, not {network.arch}")
    label, raw = read_checkpoint(source, trusted)
    state = _tensors(_unwrap(raw, ("state_dict", "model")), label)
    report = LoadReport(label)
    own = network.state_dict()
    values = {}
    unknown = []
    for key, tensor in state.items():
        if key.startswith("classifier."):
            if key not in own or tuple(own[key].shape) != tuple(tensor.shape):
                report.ignored.append((key, f"classifier of shape {tuple(tensor.shape)} does not fit the network's "
                                            f"({network.num_classes} classes)"))
                continue
        elif key not in own:
            unknown.append(key)
            continue
        values[key] = tensor
        report.mapped.append((key, key))
    if unknown:
        raise WeightsError(f"{label}: keys {network.arch} does not have (another OSNet width?): {_quote(unknown)}")
    _load(network, values, label)
    report.missing = _missing(network, set(values))
    absent = [k for k in report.missing if not k.startswith("classifier.")]
    if absent:
        raise WeightsError(f"{label} lacks {network.arch} tensors: {_quote(absent)}")
    return report
