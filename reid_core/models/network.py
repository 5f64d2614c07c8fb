"""ReID networks behind one training/inference contract.

    net = build_network("bot_r50", num_classes=751)
    net.train(); out = net(x)      # NetOutput(global_feat, bn_feat, logits)
    net.eval();  emb = net(x)      # (B, net.dim) retrieval embedding, not L2-normalised

Input everywhere: (B, 3, H, W) float32 RGB, ImageNet-normalised on the 0-255 scale (INPUT_MEAN / INPUT_STD), the
same tensor the embedder prepares. Crops are 256x128 in production; any size works (tests use 64x32).
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from reid_core.errors import InputError
from reid_core.images import IMAGENET_MEAN, IMAGENET_STD

ARCHS = ("osnet_x0_25", "bot_r50")
POOLINGS = ("gem", "avg")
STEM_POOLS = ("torchvision", "fastreid")

# ImageNet statistics on the 0-255 scale; reid_core.embedding normalises crops with these same values
# (tests/test_models.py checks they agree), and FastReID's default PIXEL_MEAN/PIXEL_STD are these too.
INPUT_MEAN = tuple(v * 255 for v in IMAGENET_MEAN)
INPUT_STD = tuple(v * 255 for v in IMAGENET_STD)


class NetOutput(NamedTuple):
    """What a network returns in train mode."""

    global_feat: torch.Tensor  # (B, dim) for metric losses (triplet, contrastive)
    bn_feat: torch.Tensor  # (B, dim) after the BNNeck; the classifier's input and the eval embedding
    logits: torch.Tensor | None  # (B, num_classes), None without a classifier


class ReIDNetwork(nn.Module):
    """Base class. Subclasses implement `_features(x) -> (global_feat, bn_feat)` and set `arch` and `dim`."""

    arch: str
    dim: int
    classifier: nn.Linear | None

    @property
    def num_classes(self) -> int:
        return 0 if self.classifier is None else int(self.classifier.out_features)

    def options(self) -> dict:
        """Build options that change the computation beyond `arch` (saved with trained models)."""
        return {}

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh identity classifier on the BN feature (0 removes it): bias-free, N(0, 0.001) as in BoT."""
        if num_classes < 0:
            raise InputError(f"num_classes must be >= 0, got {num_classes}")
        if num_classes == 0:
            self.classifier = None
            return
        head = nn.Linear(self.dim, num_classes, bias=False)
        nn.init.normal_(head.weight, std=0.001)
        self.classifier = head

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor):  # -> Tensor in eval mode, NetOutput in train mode
        global_feat, bn_feat = self._features(x)
        if not self.training:
            return bn_feat
        logits = self.classifier(bn_feat) if self.classifier is not None else None
        return NetOutput(global_feat, bn_feat, logits)


# ---------------------------------------------------------------- OSNet x0.25 (torchreid)


def _torchreid_build_model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchreid warns about optional Cython evaluation code on import
        from torchreid.reid.models import build_model
    return build_model


class OSNetReID(ReIDNetwork):
    """torchreid's OSNet with its modules registered under their own names, so `state_dict()` has exactly
    torchreid's keys and torchreid checkpoints load strictly. The embedding is torchreid's eval output: the 512-d
    `v` after the fc block, which already ends in BatchNorm1d + ReLU, so no extra BNNeck (global = bn feature)."""

    global_avgpool: nn.Module  # registered from torchreid's model in __init__ (add_module)

    def __init__(self, arch: str = "osnet_x0_25", num_classes: int = 0):
        super().__init__()
        build_model = _torchreid_build_model()
        # pretrained=False always: torchreid would otherwise try to download ImageNet weights.
        # Built with one class when none is wanted: torchreid always makes a classifier; it is dropped below.
        ref = build_model(arch, num_classes=max(num_classes, 1), pretrained=False)
        for name, child in ref.named_children():
            self.add_module(name, child)
        self._reference_type = type(ref)
        self.arch = arch
        self.dim = int(ref.feature_dim)
        if num_classes == 0:
            self.classifier = None
        # else: keep torchreid's classifier (Linear with bias) so torchreid files with their classifier load strictly

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._reference_type.featuremaps(self, x)  # torchreid's own stem-to-conv5 code, on these modules
        v = self.global_avgpool(x).flatten(1)
        fc = getattr(self, "fc", None)
        if fc is not None:  # torchreid leaves fc out (None) for some configurations
            v = fc(v)
        return v, v


# ---------------------------------------------------------------- BoT ResNet-50 (Luo et al., Bag of Tricks)


class GeM(nn.Module):
    """Generalised-mean pooling with a learnable exponent: (mean(clamp(x, eps)^p))^(1/p); p=1 is average pooling."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.ones(1) * p)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x.clamp(min=self.eps).pow(self.p), 1).pow(1.0 / self.p)


class AvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, 1)


def _stem_maxpool(kind: str) -> nn.MaxPool2d:
    # FastReID's ResNet pools the stem with ceil_mode and no padding; torchvision pads by 1. Same output size at
    # 256x128 but shifted windows, so a FastReID checkpoint only reproduces its features with its own pooling.
    if kind == "fastreid":
        return nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)
    return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)


class BoTResNet50(ReIDNetwork):
    """torchvision ResNet-50 with last stride 1, GeM or average pooling, a BNNeck (BatchNorm1d with its bias frozen
    at zero) and a bias-free classifier on the BN feature. Eval embedding: the 2048-d BN feature.

    State-dict layout: `backbone.{conv1,bn1,layer1-4}.*` (torchvision names), `pool.p` (GeM only), `bnneck.*`,
    `classifier.weight`."""

    def __init__(self, num_classes: int = 0, pooling: str = "gem", stem_pool: str = "torchvision"):
        super().__init__()
        if pooling not in POOLINGS:
            raise InputError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        if stem_pool not in STEM_POOLS:
            raise InputError(f"stem_pool must be one of {', '.join(STEM_POOLS)}, got {stem_pool!r}")
        from torchvision.models import resnet50

        backbone = resnet50(weights=None)
        # Last stride 1: layer4 keeps 16x8 resolution at 256x128 input, a finer map for pooling (BoT trick).
        backbone.layer4[0].conv2.stride = (1, 1)
        backbone.layer4[0].downsample[0].stride = (1, 1)
        backbone.fc = nn.Identity()  # the ImageNet head is never used; Identity has no state-dict keys
        backbone.avgpool = nn.Identity()
        self.backbone = backbone
        self.arch = "bot_r50"
        self.dim = 2048
        self.pooling = pooling
        self.stem_pool = stem_pool
        self.set_stem_pool(stem_pool)
        self.pool: nn.Module = GeM() if pooling == "gem" else AvgPool()
        self.bnneck = nn.BatchNorm1d(self.dim)
        nn.init.zeros_(self.bnneck.bias)
        self.bnneck.bias.requires_grad_(False)  # BNNeck: a shift would only move features off the origin
        self.reset_classifier(num_classes)

    def options(self) -> dict:
        return {"pooling": self.pooling, "stem_pool": self.stem_pool}

    def set_pooling(self, pooling: str) -> None:
        """Switch pooling in place (a checkpoint decides); a new GeM starts at p=3."""
        if pooling not in POOLINGS:
            raise InputError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        if pooling != self.pooling:
            self.pool = GeM() if pooling == "gem" else AvgPool()
            self.pooling = pooling

    def set_stem_pool(self, kind: str) -> None:
        if kind not in STEM_POOLS:
            raise InputError(f"stem_pool must be one of {', '.join(STEM_POOLS)}, got {kind!r}")
        self.backbone.maxpool = _stem_maxpool(kind)
        self.stem_pool = kind

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        return b.layer4(b.layer3(b.layer2(b.layer1(x))))

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        global_feat = self.pool(self.feature_map(x)).flatten(1)
        return global_feat, self.bnneck(global_feat)


# ---------------------------------------------------------------- factory


def build_network(arch: str, num_classes: int = 0, **options) -> ReIDNetwork:
    """A randomly initialised network (never downloads). options: bot_r50 takes pooling ("gem" | "avg") and
    stem_pool ("torchvision" | "fastreid"); osnet_x0_25 takes none.

    With num_classes > 0, OSNet keeps torchreid's own classifier (Linear with bias) so torchreid checkpoints load
    strictly with their classifier; call reset_classifier(n) for the bias-free BoT-style head when training anew."""
    if num_classes < 0:
        raise InputError(f"num_classes must be >= 0, got {num_classes}")
    if arch == "osnet_x0_25":
        if options:
            raise InputError(f"osnet_x0_25 takes no build options, got {', '.join(options)}")
        return OSNetReID(arch, num_classes)
    if arch == "bot_r50":
        unknown = set(options) - {"pooling", "stem_pool"}
        if unknown:
            raise InputError(f"unknown bot_r50 option(s) {', '.join(sorted(unknown))}; known: pooling, stem_pool")
        return BoTResNet50(num_classes, **options)
    raise InputError(f"unknown network architecture {arch!r}; choose one of {', '.join(ARCHS)}")
