"""The learned text branch as one network, and its model file.

    stored feature (256-d, frozen) --heads MLP--> PETA attribute probabilities
                                   --adapter--> image embedding  \
    query text --CLIP BPE--> [sot] [ctx x n] tokens [eot] --transformer--> text embedding  -> cosine

The adapter is a residual MLP that starts as the identity, so the text embedding lives in (a gentle warp of) the
store's own feature space and ranking a track costs one matrix product over features the store already holds. The
context vectors are CoOp-style learnable prompt tokens shared by every query.

File: <weights dir>/text/NAME.pt (a subfolder, so `reid train list` and the embedder loader, which read *.pt of the
weights folder itself, never mistake it for an embedder), a plain dict that torch.load(weights_only=True) reads.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from reid_core.errors import WeightsError
from reid_core.textlearn import tokens

TEXT_MODEL_FORMAT = "reid-studio-text/1"
DEFAULT_NAME = "peta-text"
SUBFOLDER = "text"


@dataclass(frozen=True)
class TextNetConfig:
    feat_dim: int = 256
    n_heads_out: int = 0  # number of attribute heads
    n_labels: int = 0  # label space of the caption-mentions auxiliary (training.text.LABEL_SPACE)
    vocab_size: int = tokens.SPECIAL
    width: int = 128
    layers: int = 2
    attention_heads: int = 4
    context_length: int = 48  # BPE tokens incl. sot/eot (the longest PETA descriptions use ~43)
    n_ctx: int = 4  # learnable context tokens
    head_hidden: int = 512
    dropout: float = 0.1


class TextNet(nn.Module):
    def __init__(self, config: TextNetConfig):
        super().__init__()
        c = self.config = config
        self.heads = nn.Sequential(nn.Linear(c.feat_dim, c.head_hidden), nn.GELU(), nn.Dropout(0.2),
                                   nn.Linear(c.head_hidden, c.n_heads_out))
        self.adapter = nn.Sequential(nn.Linear(c.feat_dim, c.feat_dim), nn.GELU(), nn.Linear(c.feat_dim, c.feat_dim))
        adapter_out = self.adapter[2]
        assert isinstance(adapter_out, nn.Linear), "the adapter ends in a Linear layer"
        nn.init.zeros_(adapter_out.weight)
        nn.init.zeros_(adapter_out.bias)
        self.token = nn.Embedding(c.vocab_size, c.width, padding_idx=tokens.PAD)
        # CLIP's scale: at nn.Embedding's default N(0, 1), Adam steps of ~lr need thousands of steps to move a row
        nn.init.normal_(self.token.weight, std=0.02)
        self.context = nn.Parameter(torch.randn(c.n_ctx, c.width) * 0.02)
        self.position = nn.Parameter(torch.randn(c.context_length + c.n_ctx, c.width) * 0.01)
        layer = nn.TransformerEncoderLayer(c.width, c.attention_heads, 2 * c.width, c.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=False)
        self.final_norm = nn.LayerNorm(c.width)
        self.project = nn.Linear(c.width, c.feat_dim)
        self.mlm = nn.Linear(c.width, c.vocab_size)
        self.mentions = nn.Linear(c.width, c.n_labels)  # training only: which labels a caption names
        self.logit_scale = nn.Parameter(torch.tensor(math.log(20.0)))

    # -- image side --
    def head_logits(self, feats: torch.Tensor) -> torch.Tensor:
        return self.heads(feats)

    def image_embedding(self, feats: torch.Tensor) -> torch.Tensor:
        return F.normalize(feats + self.adapter(feats), dim=-1)

    # -- text side --
    def _hidden(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, n_ctx + L, width): sot, context tokens, then the rest of the sequence."""
        x = self.token(ids)
        b = ids.shape[0]
        x = torch.cat([x[:, :1], self.context.unsqueeze(0).expand(b, -1, -1), x[:, 1:]], dim=1)
        x = x + self.position[:x.shape[1]]
        pad = torch.cat([ids[:, :1] == tokens.PAD, torch.zeros(b, self.config.n_ctx, dtype=torch.bool,
                                                                 device=ids.device), ids[:, 1:] == tokens.PAD], 1)
        return self.final_norm(self.encoder(x, src_key_padding_mask=pad))

    def _pooled(self, ids: torch.Tensor) -> torch.Tensor:
        """Mean over the real tokens. CLIP pools at <eot>; from scratch, on a few thousand captions, that token
        learns to gather the sentence far more slowly than a mean, which gives every word a direct gradient."""
        h = self._hidden(ids)
        real = (ids[:, 1:] != tokens.PAD) & (ids[:, 1:] != tokens.EOT)
        keep = torch.cat([torch.zeros(ids.shape[0], 1 + self.config.n_ctx, dtype=torch.bool, device=ids.device),
                          real], 1).unsqueeze(-1).float()
        return (h * keep).sum(1) / keep.sum(1).clamp(min=1.0)

    def text_embedding(self, ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.project(self._pooled(ids)), dim=-1)

    def text_embedding_and_mentions(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self._pooled(ids)
        return F.normalize(self.project(pooled), dim=-1), self.mentions(pooled)

    def mlm_logits(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L, vocab) predictions for the token positions (context tokens dropped)."""
        h = self._hidden(ids)
        h = torch.cat([h[:, :1], h[:, 1 + self.config.n_ctx:]], dim=1)
        return self.mlm(h)


@dataclass
class TextModel:
    """A trained text branch: network, vocabulary, head names and what scoring needs."""

    net: TextNet
    vocab: tokens.Vocabulary
    heads: tuple[str, ...]
    embedder: str  # features it was trained on; only stores of this embedder can use it
    head_weights: dict[str, float] = field(default_factory=dict)  # from validation AUC (see training.text)
    fusion: dict[str, float] = field(default_factory=dict)  # weights of the scores when combined
    meta: dict = field(default_factory=dict)
    path: str = ""

    @property
    def name(self) -> str:
        return Path(self.path).stem if self.path else "(unsaved)"


def text_models_dir(out_dir: str | Path | None = None) -> Path:
    from reid_core.models import default_output_dir

    return Path(out_dir) if out_dir is not None else default_output_dir() / SUBFOLDER


def text_model_path(name: str, out_dir: str | Path | None = None) -> Path:
    from reid_core.models import validate_name

    return text_models_dir(out_dir) / f"{validate_name(name)}.pt"


def default_text_model() -> str:
    return os.environ.get("REID_TEXT_MODEL", DEFAULT_NAME)


NO_MODEL_HELP = ("no learned text model is trained yet. Train one (about 10 minutes on 2 CPU cores) with\n"
                 "    reid train text --peta ../shared/data/peta --name {name}\n"
                 "or point $REID_TEXT_MODEL at another name; the attribute engine works without it.")


def find_text_model(name: str | None = None) -> Path:
    """NAME.pt in the text/ subfolder of each weights folder ($REID_WEIGHTS_DIR, weights/, ../shared/weights/)."""
    from reid_core.models import validate_name
    from reid_core.weights import search_dirs

    name = name or default_text_model()
    path = Path(name)
    if path.suffix == ".pt":
        if path.is_file():
            return path
        raise WeightsError(f"text model file {path} does not exist")
    validate_name(name)
    for d in search_dirs():
        candidate = d / SUBFOLDER / f"{name}.pt"
        if candidate.is_file():
            return candidate
    raise WeightsError(f"text model {name!r}: " + NO_MODEL_HELP.format(name=name)
                       + " Looked in: " + ", ".join(str(d / SUBFOLDER) for d in search_dirs()))


def save_text_model(path: str | Path, model: TextModel) -> Path:
    from reid_core.models.files import _plain

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": TEXT_MODEL_FORMAT, "config": asdict(model.net.config), "vocab": list(model.vocab.bpe_tokens),
               "heads": list(model.heads), "embedder": model.embedder,
               "head_weights": _plain(model.head_weights), "fusion": _plain(model.fusion),
               "state_dict": {k: v.detach().cpu() for k, v in model.net.state_dict().items()},
               "meta": _plain(model.meta)}
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_text_model(path: str | Path) -> TextModel:
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or foreign files raise many types
        raise WeightsError(f"{path}: not a readable text model ({type(e).__name__}: {e})") from e
    if not isinstance(payload, Mapping) or payload.get("format") != TEXT_MODEL_FORMAT:
        raise WeightsError(f"{path}: not a reid-studio text model (format {TEXT_MODEL_FORMAT}); retrain it with "
                           f"`reid train text`")
    net = TextNet(TextNetConfig(**payload["config"]))
    net.load_state_dict(payload["state_dict"])
    net.eval()
    return TextModel(net, tokens.Vocabulary(payload["vocab"]), tuple(payload["heads"]), payload["embedder"],
                     dict(payload["head_weights"]), dict(payload["fusion"]), dict(payload["meta"]), str(path))
