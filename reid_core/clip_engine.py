"""CLIP text-to-person engine: open_clip loaded from a local checkpoint file, never from a hub.

No CLIP weights ship with reid-studio and none can be downloaded on the machines it targets. Point
$REID_CLIP_CHECKPOINT (or `--clip-checkpoint`) at a file you brought yourself:
  * an OpenAI release (a TorchScript archive such as ViT-B-32.pt) or any state dict with the OpenAI key layout:
    the architecture is read off the tensor shapes, with OpenAI's QuickGELU;
  * an open_clip checkpoint (`open_clip_pytorch_model.bin`, `.safetensors`, or a training checkpoint with a
    "state_dict" entry): give its open_clip model name too ($REID_CLIP_MODEL / `--clip-model`, e.g.
    "ViT-B-32"), because LAION-trained models use plain GELU, which the shapes cannot reveal.
The tokenizer uses the BPE vocabulary from the weights folder (manifest "clip_bpe_vocab"); it is the same file that
ships inside open_clip, which is used if the weights folder lacks it.
"""
from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from reid_core.errors import InputError, WeightsError
from reid_core.vectors import l2_normalize

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
ENV_CHECKPOINT = "REID_CLIP_CHECKPOINT"
ENV_MODEL = "REID_CLIP_MODEL"
NO_CHECKPOINT_HELP = ("The CLIP engine needs a CLIP checkpoint, and none ships with reid-studio (no CLIP weights "
                      "can be downloaded here). Copy one onto this machine (e.g. OpenAI's ViT-B-32.pt or an "
                      "open_clip *.bin/*.safetensors) and pass --clip-checkpoint PATH or set $REID_CLIP_CHECKPOINT "
                      "(plus --clip-model NAME / $REID_CLIP_MODEL for open_clip-format files). The attribute engine "
                      "works without it.")


@dataclass(frozen=True)
class ClipInfo:
    path: str
    format: str  # "openai-torchscript" | "state-dict" | "training-checkpoint" | "safetensors"
    model_name: str  # open_clip name, or "inferred" when read off the tensor shapes
    model_id: str  # content hash prefix: keys the per-crop feature cache, so another checkpoint never reuses it
    embed_dim: int
    image_size: int
    context_length: int


def checkpoint_from_env() -> Path | None:
    value = os.environ.get(ENV_CHECKPOINT, "").strip()
    return Path(value).expanduser() if value else None


def _file_id(path: Path) -> str:
    from reid_core.weights import sha256_of

    return sha256_of(path)[:16]


def _read_state_dict(path: Path) -> tuple[dict, str]:
    """The checkpoint's tensors, whatever of the usual containers it comes in."""
    import torch

    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file

            return dict(load_file(str(path), device="cpu")), "safetensors"
        except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
            raise WeightsError(f"{path}: not a readable safetensors file ({e})") from None
    try:  # OpenAI releases are TorchScript archives; a plain torch.load cannot open them safely
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "torch.jit.load is deprecated": still the only way to read them
            jit = torch.jit.load(str(path), map_location="cpu")
        return dict(jit.state_dict()), "openai-torchscript"
    except Exception:  # noqa: BLE001 - not TorchScript; try a pickled state dict next
        pass
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for truncated or foreign files
        raise WeightsError(f"{path}: not a readable CLIP checkpoint (corrupt, truncated, or not a PyTorch file): "
                           f"{str(e).splitlines()[0][:200]}") from None
    fmt = "state-dict"
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj, fmt = obj["state_dict"], "training-checkpoint"
    if not isinstance(obj, dict) or not obj or not all(hasattr(v, "shape") for v in obj.values()):
        raise WeightsError(f"{path}: the file loads but holds no tensor state dict; it is not a CLIP checkpoint")
    return {k.removeprefix("module."): v for k, v in obj.items()}, fmt


def _build(state: dict, model_name: str | None, path: Path):
    import open_clip
    import torch
    from open_clip.model import build_model_from_openai_state_dict

    # Metadata entries of OpenAI archives, and the causal mask TorchScript saves as if it were a weight.
    for key in [k for k in state if k in ("input_resolution", "context_length", "vocab_size")
                or k.endswith("attn_mask")]:
        state.pop(key)
    if model_name:
        if model_name not in open_clip.list_models():
            raise WeightsError(f"unknown open_clip model name {model_name!r}; see open_clip.list_models()")
        model = open_clip.create_model(model_name, pretrained=None, device="cpu")
        if "logit_scale" in state and state["logit_scale"].ndim != model.logit_scale.ndim:
            state["logit_scale"] = state["logit_scale"].reshape(model.logit_scale.shape)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise WeightsError(f"{path}: does not fit open_clip model {model_name!r}: "
                               f"{str(e).splitlines()[0][:300]}") from None
        return model.float().eval()
    if "text_projection" not in state or "token_embedding.weight" not in state or not any(
            k.startswith("visual.") for k in state):
        raise WeightsError(f"{path}: the tensors are not a CLIP model in OpenAI/open_clip layout (no "
                           "text_projection/visual.*); if it is an open_clip model with another text tower, "
                           "pass its model name with --clip-model")
    try:
        model = build_model_from_openai_state_dict(dict(state), quick_gelu=True, cast_dtype=torch.float16)
    except Exception as e:  # noqa: BLE001 - shape inference fails with KeyError/RuntimeError/AssertionError
        raise WeightsError(f"{path}: could not infer a CLIP architecture from the tensors ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:200] if str(e) else ''}); pass --clip-model NAME") from None
    # The builder casts to half precision before loading; reload in float32 so a float32 checkpoint loses nothing
    # (OpenAI's own files are half precision and load exactly either way), and the CPU wants float32 anyway.
    model = model.float()
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    return model.eval()


def _tokenizer(context_length: int):
    from open_clip.tokenizer import SimpleTokenizer

    from reid_core.weights import resolve

    try:
        bpe = str(resolve("clip_bpe_vocab").path)
    except WeightsError:
        from open_clip.tokenizer import default_bpe

        bpe = default_bpe()  # byte-identical copy bundled with open_clip_torch
    return SimpleTokenizer(bpe_path=bpe, context_length=context_length)


class ClipEngine:
    """Embeds texts and person crops into CLIP's joint space (rows L2-normalised, cosine = dot product)."""

    def __init__(self, checkpoint: str | Path, model_name: str | None = None):
        import torch

        path = Path(checkpoint).expanduser()
        if not path.exists():
            raise WeightsError(f"CLIP checkpoint {path} does not exist. {NO_CHECKPOINT_HELP}")
        if path.is_dir():
            raise WeightsError(f"CLIP checkpoint {path} is a folder; give the checkpoint file inside it")
        if path.stat().st_size == 0:
            raise WeightsError(f"CLIP checkpoint {path} is empty (0 bytes); the copy failed or was cut short")
        state, fmt = _read_state_dict(path)
        self.model = _build(state, model_name, path)
        visual = self.model.visual
        size = visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        cfg = getattr(visual, "preprocess_cfg", {}) or {}
        self.mean = np.array(cfg.get("mean", OPENAI_MEAN), np.float32)
        self.std = np.array(cfg.get("std", OPENAI_STD), np.float32)
        self.context_length = int(self.model.context_length)
        self.tokenizer = _tokenizer(self.context_length)
        vocab = int(self.model.vocab_size) if hasattr(self.model, "vocab_size") else None
        if vocab is not None and vocab < self.tokenizer.vocab_size:
            raise WeightsError(f"{path}: the model's vocabulary ({vocab} tokens) is smaller than CLIP's BPE "
                               f"tokenizer ({self.tokenizer.vocab_size}); this is not a standard CLIP text tower")
        with torch.inference_mode():
            dim = int(self.model.encode_text(self.tokenizer(["a person"])).shape[-1])
        self.info = ClipInfo(str(path), fmt, model_name or "inferred", _file_id(path), dim, self.image_size,
                             self.context_length)
        self._lock = threading.Lock()

    @property
    def cache_kind(self) -> str:
        """Store annotation kind for this checkpoint's crop features."""
        return f"clip:{self.info.model_id}"

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        if isinstance(texts, str):
            texts = [texts]
        if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
            raise InputError("texts to embed must be non-empty strings")
        tokens = self.tokenizer(list(texts))
        with self._lock, torch.inference_mode():
            feats = self.model.encode_text(tokens).float().numpy()
        return l2_normalize(feats, dtype=np.float32)

    def preprocess(self, crops_bgr: Sequence[np.ndarray]) -> np.ndarray:
        """Person crops are tall; CLIP wants a square. Pad (not crop) to a square with CLIP's mean colour, so the
        whole person stays in view, then resize and normalise. -> (N, 3, S, S) float32."""
        s = self.image_size
        fill = tuple(int(v * 255) for v in self.mean)
        out = np.empty((len(crops_bgr), 3, s, s), np.float32)
        for i, crop in enumerate(crops_bgr):
            if not isinstance(crop, np.ndarray) or crop.ndim != 3 or crop.shape[2] != 3 or crop.size == 0:
                raise InputError("each crop must be a BGR image array of shape (H, W, 3)")
            rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
            h, w = rgb.shape[:2]
            side = max(h, w)
            canvas = np.empty((side, side, 3), np.uint8)
            canvas[:] = fill
            y0, x0 = (side - h) // 2, (side - w) // 2
            canvas[y0:y0 + h, x0:x0 + w] = rgb
            img = cv2.resize(canvas, (s, s), interpolation=cv2.INTER_CUBIC if side < s else cv2.INTER_AREA)
            out[i] = ((img.astype(np.float32) / 255.0 - self.mean) / self.std).transpose(2, 0, 1)
        return out

    def encode_images(self, crops_bgr: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        import torch

        if len(crops_bgr) == 0:
            return np.zeros((0, self.info.embed_dim), np.float32)
        parts = []
        for start in range(0, len(crops_bgr), batch_size):
            batch = torch.from_numpy(self.preprocess(crops_bgr[start:start + batch_size]))
            with self._lock, torch.inference_mode():
                parts.append(self.model.encode_image(batch).float().numpy())
        return l2_normalize(np.concatenate(parts), dtype=np.float32)

    def rank(self, text: str, crops_bgr: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(order best first, cosine per crop) of `crops_bgr` against `text`."""
        sims = self.encode_images(crops_bgr) @ self.encode_text([text])[0]
        return np.argsort(-sims, kind="stable"), sims


@lru_cache(maxsize=2)
def _load_cached(path: str, model_name: str | None, size: int, mtime_ns: int) -> ClipEngine:
    return ClipEngine(path, model_name)


def load_clip(checkpoint: str | Path | None = None, model_name: str | None = None) -> ClipEngine:
    """The engine for `checkpoint` (default $REID_CLIP_CHECKPOINT), loaded once per process and file version."""
    path = Path(checkpoint).expanduser() if checkpoint else checkpoint_from_env()
    if path is None:
        raise WeightsError(NO_CHECKPOINT_HELP)
    model_name = model_name or os.environ.get(ENV_MODEL) or None
    if not path.is_file():
        return ClipEngine(path, model_name)  # raises the right message
    st = path.stat()
    return _load_cached(str(path.resolve()), model_name, st.st_size, st.st_mtime_ns)
