"""Scoring with a trained text branch: head probabilities and embeddings of stored features, query scores.

Two scores per track, both from features the store already holds:
  heads    the parsed query (text_query.parse_heads) against PETA head probabilities: the geometric mean of the
           constraints' agreements (each clipped at FLOOR, so one wrong head cannot zero a track), weighted by how
           well each head did on validation identities;
  cosine   the text encoder's embedding against the adapted track feature.
Combined: the two standardised over the searched tracks, mixed with the weight chosen on validation identities.
"""
from __future__ import annotations

from dataclasses import dataclass
from threading import Lock

import numpy as np
import torch

from reid_core.text_query import HeadQuery, parse_heads
from reid_core.textlearn.model import TextModel, find_text_model, load_text_model

FLOOR = 0.02
IMPLIED_FACTOR = 0.5
DEFAULT_HEAD_WEIGHT = 0.3  # a head without a validation figure (too few positives to measure)


@dataclass(frozen=True)
class LearnedScores:
    heads: np.ndarray | None  # (N,) in 0..1, None when the parser understood nothing
    cosine: np.ndarray  # (N,)
    combined: np.ndarray  # (N,) standardised mix (ranking only)
    agreements: np.ndarray | None  # (N, constraints)


def _z(x: np.ndarray) -> np.ndarray:
    s = float(np.std(x))
    return (x - float(np.mean(x))) / s if s > 1e-9 else np.zeros_like(x)


class LearnedText:
    """A loaded text model. Shareable between threads (torch calls under a lock)."""

    def __init__(self, model: TextModel):
        self.model = model
        self.index = {h: i for i, h in enumerate(model.heads)}
        self._lock = Lock()

    @classmethod
    def load(cls, name: str | None = None) -> LearnedText:
        return cls(load_text_model(find_text_model(name)))

    @property
    def embedder(self) -> str:
        return self.model.embedder

    def head_probs(self, feats: np.ndarray) -> np.ndarray:
        with self._lock, torch.no_grad():
            self.model.net.eval()
            return torch.sigmoid(self.model.net.head_logits(torch.as_tensor(feats, dtype=torch.float32))).numpy()

    def image_embeddings(self, feats: np.ndarray) -> np.ndarray:
        with self._lock, torch.no_grad():
            self.model.net.eval()
            return self.model.net.image_embedding(torch.as_tensor(feats, dtype=torch.float32)).numpy()

    def text_embeddings(self, texts: list[str]) -> np.ndarray:
        ids = self.model.vocab.encode([t.lower() for t in texts], self.model.net.config.context_length)
        with self._lock, torch.no_grad():
            self.model.net.eval()
            return self.model.net.text_embedding(torch.as_tensor(ids)).numpy()

    def unknown_pieces(self, text: str) -> list[str]:
        return self.model.vocab.unknown_pieces(text.lower())

    def head_score(self, probs: np.ndarray, query: HeadQuery) -> tuple[np.ndarray, np.ndarray]:
        """(scores (N,), agreements (N, C)) for the query's constraints the model has heads for."""
        agreements, weights = [], []
        for c in query.constraints:
            targets = [(self.index[t], credit) for t, credit in c.targets if t in self.index]
            if not targets:
                continue
            a = np.max(np.stack([credit * probs[:, i] for i, credit in targets]), axis=0)
            agreements.append(a if c.positive else 1.0 - a)
            head_w = float(np.mean([self.model.head_weights.get(self.model.heads[i], DEFAULT_HEAD_WEIGHT)
                                    for i, _ in targets]))
            weights.append(head_w * c.share * (IMPLIED_FACTOR if c.implied else 1.0))
        if not agreements:
            return np.zeros(len(probs)), np.zeros((len(probs), 0))
        ag = np.stack(agreements, axis=1)
        w = np.asarray(weights)
        if w.sum() <= 0:
            w = np.ones_like(w)
        log_mean = (np.log(np.clip(ag, FLOOR, 1.0)) * w).sum(1) / w.sum()
        return np.exp(log_mean), ag

    def score(self, text: str, probs: np.ndarray, image_emb: np.ndarray, query: HeadQuery | None = None,
              text_emb: np.ndarray | None = None) -> LearnedScores:
        query = query if query is not None else parse_heads(text)
        cosine = image_emb @ (text_emb if text_emb is not None else self.text_embeddings([text])[0])
        if not query.understood:
            return LearnedScores(None, cosine, _z(cosine), None)
        heads, ag = self.head_score(probs, query)
        if ag.shape[1] == 0:
            return LearnedScores(None, cosine, _z(cosine), None)
        w = float(self.model.fusion.get("heads", 0.5))
        return LearnedScores(heads, cosine, w * _z(np.log(np.clip(heads, 1e-6, 1))) + (1 - w) * _z(cosine), ag)


_CACHE: dict[str, LearnedText] = {}
_CACHE_LOCK = Lock()


def load_learned(name: str | None = None) -> LearnedText:
    """Loaded once per process and file (a retrained file of the same name is reloaded: keyed by mtime)."""
    path = find_text_model(name)
    key = f"{path}:{path.stat().st_mtime_ns}"
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = LearnedText(load_text_model(path))
        return _CACHE[key]
