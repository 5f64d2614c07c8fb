"""CLIP's byte-pair tokenizer (the vocabulary file in the weights folder) over a compact id space.

The full CLIP vocabulary has 49,408 entries; PETA captions use a few hundred. The model keeps an embedding row only
for tokens seen in training (plus padding, start, end, mask and unknown), so the file stays small and training fast;
a query word made of unseen pieces maps to <unk>, and `unknown_pieces` says which, so a user can be told.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np

from reid_core.errors import WeightsError

PAD, SOT, EOT, MASK, UNK = 0, 1, 2, 3, 4
SPECIAL = 5


@lru_cache(maxsize=1)
def bpe():
    """open_clip's SimpleTokenizer on the local vocabulary file (the one clip_engine uses too)."""
    from open_clip.tokenizer import SimpleTokenizer

    from reid_core.weights import resolve

    try:
        path = str(resolve("clip_bpe_vocab").path)
    except WeightsError:
        from open_clip.tokenizer import default_bpe

        path = default_bpe()  # byte-identical copy bundled with open_clip_torch
    return SimpleTokenizer(bpe_path=path)


def bpe_ids(text: str) -> list[int]:
    return bpe().encode(text)


class Vocabulary:
    """CLIP BPE ids -> compact ids (SPECIAL.. in order of first appearance)."""

    def __init__(self, bpe_tokens: Sequence[int] = ()):
        self.bpe_tokens = list(bpe_tokens)
        self.index = {t: SPECIAL + i for i, t in enumerate(self.bpe_tokens)}

    @classmethod
    def build(cls, texts: Iterable[str]) -> Vocabulary:
        seen: dict[int, None] = {}
        for t in texts:
            for i in bpe_ids(t):
                seen.setdefault(i, None)
        return cls(sorted(seen))

    def __len__(self) -> int:
        return SPECIAL + len(self.bpe_tokens)

    def encode(self, texts: Sequence[str], length: int) -> np.ndarray:
        """(N, length) int64: <sot> tokens <eot> <pad>..., cut to fit."""
        out = np.full((len(texts), length), PAD, np.int64)
        for row, text in enumerate(texts):
            ids = [self.index.get(t, UNK) for t in bpe_ids(text)][:length - 2]
            seq = [SOT] + ids + [EOT]
            out[row, :len(seq)] = seq
        return out

    def unknown_pieces(self, text: str) -> list[str]:
        tok = bpe()
        return [tok.decode([t]).strip() for t in bpe_ids(text) if t not in self.index]
