"""Appearance embedders: person crop (256x128 RGB) -> L2-normalised feature, on a common cosine scale.

Two backends for the torchreid OSNet checkpoints: plain PyTorch (the reference) and OpenVINO (the same network
converted once and cached; several times faster on a CPU). Intel's OpenVINO ReID models and ONNX exports run on
OpenVINO directly. All take the same input so callers never care which one is loaded.
"""
from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from reid_core import images, offline
from reid_core.crops import CROP_H, CROP_W
from reid_core.errors import InputError, WeightsError
from reid_core.precision import InferencePrecision, effective, inference_precision, ov_config
from reid_core.vectors import l2_normalize
from reid_core.weights import resolve

# On the 0-255 scale the crops arrive in; float32 before scaling, as the OpenVINO preprocessing has always had them.
IMAGENET_MEAN = np.array(images.IMAGENET_MEAN, np.float32) * 255
IMAGENET_STD = np.array(images.IMAGENET_STD, np.float32) * 255


@dataclass(frozen=True)
class ModelSpec:
    arch: str  # torchreid architecture name, or "" for models that are only an IR/ONNX file
    num_classes: int
    rgb: bool  # False: the network wants BGR 0-255 (Intel IRs bake their normalisation in)
    normalise_input: bool  # True: ImageNet mean/std applied before the network


SPECS = {
    "osnet_x0_25_msmt17": ModelSpec("osnet_x0_25", 1041, True, True),
    "osnet_x0_25_market1501": ModelSpec("osnet_x0_25", 751, True, True),
    "osnet_x0_25_msmt17_boxmot": ModelSpec("", 0, True, True),
    "person-reidentification-retail-0287": ModelSpec("", 0, False, False),
    "person-reidentification-retail-0288": ModelSpec("", 0, False, False),
}
# Chosen by cross-camera measurement (bench/eval_cross.py, docs/evaluation.md): best average over PETS persons,
# VIPeR, PRID and GRID of the candidates here.
DEFAULT_MODEL = "person-reidentification-retail-0287"
Backend = Literal["openvino", "torch"]  # OpenVINO IR (fast) or plain PyTorch (the reference)
BACKENDS: tuple[Backend, ...] = ("openvino", "torch")


def _check_crops(crops: np.ndarray) -> np.ndarray:
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[1:] != (CROP_H, CROP_W, 3) or crops.dtype != np.uint8:
        raise InputError(f"crops must be a uint8 array of shape (N, {CROP_H}, {CROP_W}, 3) RGB; "
                         f"got {crops.dtype} {crops.shape}")
    return crops


class Embedder:
    """Base class; subclasses implement `_forward` on what `_prepare` makes of a (B, 256, 128, 3) uint8 RGB batch
    (here: float32 NCHW in the network's colour order, normalised if the spec says so)."""

    name: str
    backend: str
    dim: int

    def __init__(self, name: str, spec: ModelSpec, flip: bool):
        self.name, self.spec, self.flip = name, spec, flip
        self._lock = threading.Lock()  # compiled models and torch modules are shared between app requests

    def _prepare(self, crops: np.ndarray) -> np.ndarray:
        x = crops if self.spec.rgb else crops[..., ::-1]
        x = x.astype(np.float32)
        if self.spec.normalise_input:
            x = (x - IMAGENET_MEAN) / IMAGENET_STD
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def _forward(self, batch_nchw: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def embed(self, crops: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(N, 256, 128, 3) uint8 RGB -> (N, dim) float32, rows L2-normalised. Flip averaging if enabled."""
        crops = _check_crops(crops)
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        out = []
        with self._lock:
            for i in range(0, len(crops), batch_size):
                part = crops[i:i + batch_size]
                feats = self._forward(self._prepare(part))
                if self.flip:
                    mirrored = self._forward(self._prepare(part[:, :, ::-1]))
                    feats = l2_normalize(feats, dtype=np.float32) + l2_normalize(mirrored, dtype=np.float32)
                out.append(feats)
        return l2_normalize(np.concatenate(out), dtype=np.float32)


class TorchEmbedder(Embedder):
    backend = "torch"

    def __init__(self, name: str, spec: ModelSpec, flip: bool):
        super().__init__(name, spec, flip)
        self.module = build_torch_osnet(name)
        self.dim = 512

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(batch)).numpy()


# Precision: reid_core/precision.py ($REID_PRECISION; default bf16 where the CPU computes it natively: 1.3-1.5x the
# crops/s of f32 there). bf16 against the torch f32 features over 1,123 PETS crops: cosine min 0.9982, mean 0.9993.

# Batches run on models compiled for a fixed batch size: on the batch sizes an ingest really sends (chunks of 2 to
# 200 crops) that was 1.2-1.3x faster than one dynamic-batch model, in bf16 and f32 alike. A batch is cut greedily
# into these sizes, so nothing is padded; each size is compiled on first use. A crop's feature does not depend on
# the batch it came in (the OSNets give identical outputs at every size; Intel's IRs differ by < 0.01 in bf16).
STATIC_BATCHES = (32, 8, 1)


class OpenVINOEmbedder(Embedder):
    backend = "openvino"

    def __init__(self, name: str, spec: ModelSpec, flip: bool, precision: InferencePrecision | None = None):
        super().__init__(name, spec, flip)
        import openvino as ov

        self._core = ov.Core()
        self._model = self._core.read_model(str(self._model_file(name, spec)))
        # LATENCY with one stream uses both cores on one batch, measured faster than THROUGHPUT here.
        self._config = ov_config(PERFORMANCE_HINT="LATENCY")
        if precision:  # tests pin it; everything else follows $REID_PRECISION
            self._config["INFERENCE_PRECISION_HINT"] = precision
        self._compiled: dict[int, object] = {}
        one = self._compiled_for(1)
        self.precision = effective(one)  # what the CPU runs: bf16 / f32
        self.dim = int(one.output(0).get_partial_shape()[-1].get_length())

    def _compiled_for(self, size: int):
        if size not in self._compiled:
            model = self._model.clone()
            model.reshape([size, 3, CROP_H, CROP_W])
            self._compiled[size] = self._core.compile_model(_with_preprocessing(model, self.spec), "CPU",
                                                            self._config)
        return self._compiled[size]

    def _prepare(self, crops: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(crops)  # the compiled graph does the rest, see _with_preprocessing

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        out, i = [], 0
        for size in STATIC_BATCHES:
            while len(batch) - i >= size:
                out.append(np.asarray(self._compiled_for(size)(batch[i:i + size])[0]).reshape(size, -1))
                i += size
        return np.concatenate(out)

    @staticmethod
    def _model_file(name: str, spec: ModelSpec) -> Path:
        files = resolve(name)
        if not spec.arch:
            return files.path
        # Convert the torchreid state_dict once; keyed by the weights' hash so a changed file is reconverted.
        sha = files.paths[0].name + "-" + _short_sha(files.paths[0])
        return _cached_ir(f"{name}-{sha}", lambda: build_torch_osnet(name))


def _with_preprocessing(model, spec: ModelSpec):
    """The model taking the crops as they come (uint8 NHWC RGB) and doing `Embedder._prepare`'s work itself:
    colour order, float conversion, ImageNet mean/std and the transpose become part of the compiled graph, which
    is faster than numpy and leaves the ingest's main thread free. Same features as the numpy path (max |diff|
    < 1e-6 in f32). Applied at load time, so the cached IR (the plain converted network) is unchanged."""
    import openvino as ov
    from openvino.preprocess import ColorFormat, PrePostProcessor

    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(ColorFormat.RGB)
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    steps = ppp.input().preprocess()
    if not spec.rgb:
        steps.convert_color(ColorFormat.BGR)
    steps.convert_element_type(ov.Type.f32)
    if spec.normalise_input:
        steps.mean(IMAGENET_MEAN.tolist()).scale(IMAGENET_STD.tolist())
    return ppp.build()


def _cached_ir(stem: str, build_module) -> Path:
    """The OpenVINO IR of the torch module `build_module()` builds, converted once into the cache as `stem`.xml."""
    xml = offline.cache_dir() / "openvino" / f"{stem}.xml"
    if not xml.exists():
        import openvino as ov
        import torch

        module = build_module()
        ov_model = ov.convert_model(module, example_input=torch.zeros(1, 3, CROP_H, CROP_W))
        xml.parent.mkdir(parents=True, exist_ok=True)
        tmp = xml.with_suffix(".tmp.xml")
        ov.save_model(ov_model, str(tmp), compress_to_fp16=False)
        tmp.with_suffix(".bin").replace(xml.with_suffix(".bin"))  # bin first: an xml never points at a missing bin
        tmp.replace(xml)
    return xml


def _short_sha(path: Path) -> str:
    from reid_core.weights import sha256_of

    return sha256_of(path)[:12]


# ---------------------------------------------------------------- trained models (reid_core.models files)

# Trained models are not in SPECS: their names come from the NAME.pt files in the weights folders. They take the
# same input as the torchreid OSNets (RGB, ImageNet-normalised). arch is a marker here, never built by torchreid.
TRAINED_SPEC = ModelSpec("trained", 0, True, True)


def known_embedders() -> list[str]:
    """Manifest embedders, then the trained models found in the weights folders."""
    from reid_core.models import list_trained

    return list(SPECS) + list(FUSIONS) + [n for n in list_trained() if n not in SPECS]


def embedder_spec(name: str) -> ModelSpec:
    """The spec of a manifest embedder or a trained model; WeightsError for an unknown name."""
    if name in SPECS:
        return SPECS[name]
    if name in FUSIONS:
        return FUSION_SPEC
    _trained_file(name)
    return TRAINED_SPEC


def _trained_file(name: str) -> Path:
    from reid_core.models import find_trained

    try:
        return find_trained(name)
    except WeightsError as e:
        raise WeightsError(f"unknown embedder {name!r}: not one of {', '.join(SPECS)}, and {e}") from None


class TrainedTorchEmbedder(TorchEmbedder):
    """A trained ReIDNetwork (reid_core.models file) run in torch; `dim` comes from the network."""

    def __init__(self, name: str, spec: ModelSpec, flip: bool):
        from reid_core.models import load_model

        Embedder.__init__(self, name, spec, flip)
        self.module, self.meta = load_model(_trained_file(name))
        self.dim = self.module.dim


class TrainedOpenVINOEmbedder(OpenVINOEmbedder):
    """A trained ReIDNetwork converted to OpenVINO once, cached by the model file's sha256."""

    @staticmethod
    def _model_file(name: str, spec: ModelSpec) -> Path:
        from reid_core.models import load_model

        path = _trained_file(name)
        return _cached_ir(f"trained-{name}-{_short_sha(path)}", lambda: load_model(path)[0])


def build_torch_osnet(name: str):
    """The torchreid network with the local checkpoint loaded strictly, in eval mode (never downloads)."""
    import torch

    spec = SPECS[name]
    if not spec.arch:
        raise WeightsError(f"model {name!r} is not a torchreid checkpoint; use backend='openvino'")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchreid warns about optional Cython evaluation code on import
        from torchreid.reid.models import build_model

    files = resolve(name)
    module = build_model(spec.arch, num_classes=spec.num_classes, pretrained=False)
    state = torch.load(files.path, map_location="cpu", weights_only=True)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    module.load_state_dict(state, strict=True)
    return module.eval()


def load_embedder(name: str = DEFAULT_MODEL, backend: str = "openvino", flip: bool = False) -> Embedder:
    """Load (once per process) an embedder by manifest name or trained-model name (a NAME.pt file of
    reid_core.models in the weights folders). backend: 'openvino' (fast) or 'torch' (reference)."""
    if name in FUSIONS:
        return load_fusion(name, backend, flip)
    # A trained model is cached under its file's hash too: retraining under the same name loads the new weights.
    version = "" if name in SPECS else _short_sha(_trained_file(name))
    return _load_embedder(name, backend, flip, version, inference_precision())


@lru_cache(maxsize=8)
def _load_embedder(name: str, backend: str, flip: bool, version: str, _precision: InferencePrecision) -> Embedder:
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if name not in SPECS:
        return (TrainedTorchEmbedder if backend == "torch" else TrainedOpenVINOEmbedder)(name, TRAINED_SPEC, flip)
    spec = SPECS[name]
    if backend == "torch":
        if not spec.arch:
            raise InputError(f"model {name!r} only runs on the openvino backend")
        return TorchEmbedder(name, spec, flip)
    return OpenVINOEmbedder(name, spec, flip)


# ---------------------------------------------------------------- fusion of complementary backbones


@dataclass(frozen=True)
class FusionSpec:
    """Several embedders on one cosine scale: the fused feature is the concatenation of the members' L2-normalised
    features, member i scaled by sqrt(weights[i]), so the fused cosine is sum(weights[i] * cosine_i)."""

    members: tuple[str, ...]
    weights: tuple[float, ...]  # sum to 1
    about: str


# Equal weights: nothing is tuned on labelled data. bench/eval_cross.py (docs/evaluation.md, "Cross-camera
# evaluation") measured these and a weight learned without labels from PETS tracker tracks (OSNet 0.3, 0287 0.7: no
# better than 0287 alone). 0287 + boxmot with flip had the best mean over PETS, VIPeR, PRID and GRID; adding the
# weak OSNet x0.25 MSMT17 to 0287 at equal weight lowers every cross-camera figure.
FUSIONS = {
    "fusion_osnet_0287": FusionSpec(("osnet_x0_25_msmt17", "person-reidentification-retail-0287"), (0.5, 0.5),
                                    "OSNet x0.25 MSMT17 + Intel 0287, equal weights"),
    "fusion_0287_0288": FusionSpec(("person-reidentification-retail-0287", "person-reidentification-retail-0288"),
                                   (0.5, 0.5), "Intel 0287 + 0288, equal weights"),
    "fusion_0287_boxmot": FusionSpec(("person-reidentification-retail-0287", "osnet_x0_25_msmt17_boxmot"),
                                     (0.5, 0.5), "Intel 0287 + OSNet x0.25 MSMT17 (boxmot export), equal weights"),
}
FUSION_SPEC = ModelSpec("fusion", 0, True, True)  # a marker: members prepare their own inputs


def fuse_features(parts: list[np.ndarray], weights: tuple[float, ...]) -> np.ndarray:
    """Members' features (any scale) -> fused L2-normalised rows whose cosine is the weighted mean of theirs."""
    total = float(sum(weights))
    scaled = [l2_normalize(p, dtype=np.float32) * np.float32(np.sqrt(w / total)) for p, w in zip(parts, weights)]
    return l2_normalize(np.hstack(scaled), dtype=np.float32)


class FusionEmbedder(Embedder):
    """The members run one after the other on the same crops (each with its own flip averaging)."""

    def __init__(self, name: str, backend: str, flip: bool):
        super().__init__(name, FUSION_SPEC, flip)
        self.fusion = FUSIONS[name]
        self.backend = backend
        self.members = [load_embedder(m, backend, flip) for m in self.fusion.members]
        self.dim = sum(m.dim for m in self.members)
        precisions = {getattr(m, "precision", "f32") for m in self.members}
        self.precision = precisions.pop() if len(precisions) == 1 else "mixed"

    def embed(self, crops: np.ndarray, batch_size: int = 32) -> np.ndarray:
        crops = _check_crops(crops)
        return fuse_features([m.embed(crops, batch_size) for m in self.members], self.fusion.weights)


def load_fusion(name: str, backend: str = "openvino", flip: bool = False) -> FusionEmbedder:
    spec = FUSIONS[name]
    if backend == "torch":
        ir_only = [m for m in spec.members if not SPECS[m].arch]
        if ir_only:
            raise InputError(f"{name} fuses {', '.join(ir_only)}, which only run on the openvino backend")
    return _load_fusion(name, backend, flip)


@lru_cache(maxsize=4)
def _load_fusion(name: str, backend: str, flip: bool) -> FusionEmbedder:
    return FusionEmbedder(name, backend, flip)
