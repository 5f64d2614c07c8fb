"""Training the text branch on PETA: attribute heads + a text encoder aligned to frozen stored features.

Loss per batch of B (feature, caption) pairs, one caption drawn per image from its person's labels:
  attributes  binary cross-entropy of the heads against the person's PETA labels;
  SDM         Similarity Distribution Matching (IRRA, Jiang & Ye 2023): KL divergence between the softmax of the
              scaled image-text cosines and the true match distribution, image->text and text->image. A caption
              matches every image in the batch whose labels include all it says (it was written from one person's
              labels, but "a man with a backpack" fits every man with a backpack): the identity-label distribution
              with PETA's per-person labels standing in for identities;
  MLM         (weight --mlm-weight, 0 = off) masked-token prediction on the captions, a small auxiliary that keeps
              the encoder reading every word.
Image features stay frozen: only the heads, a residual adapter over the features, the text encoder and its
CoOp-style context tokens learn, so the store needs nothing recomputed.

The loop is reid_core.training.engine.fit (resumable run folder runs/train/NAME: last.pt, metrics.csv, tb/).
After it, validation identities (never the held-out test ones) set each head's weight and the heads/cosine mix.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from reid_core.errors import InputError
from reid_core.textlearn import tokens
from reid_core.textlearn.captions import EVAL_STYLES, describe_person, random_caption
from reid_core.textlearn.evaluate import attribute_protocol, head_auc, person_protocol
from reid_core.textlearn.model import TextModel, TextNet, TextNetConfig, save_text_model, text_model_path
from reid_core.textlearn.peta import PetaData, PetaFeatures, embed_peta, load_peta, split_persons
from reid_core.textlearn.vocab import HEADS, head_targets
from reid_core.training.engine import TrainConfig, fit

LABEL_SPACE = HEADS + ("personalFemale",)
TEXT_TRAIN = TrainConfig(epochs=24, lr=1e-3, weight_decay=1e-4, warmup_epochs=2.0)
FUSION_GRID = (0.0, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0)


@dataclass(frozen=True)
class TextTrainOptions:
    batch_size: int = 128
    mlm_weight: float = 0.1
    sdm_weight: float = 0.1  # SDM at full weight beside soft_nce cost 0.09 val mAP after 8 epochs (measured)
    attr_weight: float = 1.0
    mask_prob: float = 0.15
    split_seed: int = 0
    net: TextNetConfig = field(default_factory=TextNetConfig)

    def check(self) -> None:
        if self.batch_size < 2 or self.mlm_weight < 0 or self.attr_weight < 0 or not 0 <= self.mask_prob < 1:
            raise InputError("batch size must be >= 2, loss weights >= 0 and the mask probability in [0, 1)")


def sdm_loss(image: torch.Tensor, text: torch.Tensor, match: torch.Tensor, scale: torch.Tensor,
             eps: float = 1e-8) -> torch.Tensor:
    """image (B, D), text (T, D) normalised; match (T, B) 0/1, every row and column with at least one 1."""
    logits = scale * text @ image.t()
    q_t2i = match / match.sum(1, keepdim=True)
    q_i2t = match.t() / match.t().sum(1, keepdim=True)
    p_t2i = F.softmax(logits, 1)
    p_i2t = F.softmax(logits.t(), 1)
    kl_t2i = (p_t2i * (F.log_softmax(logits, 1) - torch.log(q_t2i + eps))).sum(1).mean()
    kl_i2t = (p_i2t * (F.log_softmax(logits.t(), 1) - torch.log(q_i2t + eps))).sum(1).mean()
    return kl_t2i + kl_i2t


def soft_nce(image: torch.Tensor, text: torch.Tensor, match: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the same softmaxes against the match distribution (KL(q || p) up to a constant), both
    directions. SDM's KL(p || q) is mode-seeking: from a random text encoder (p near uniform over the batch) its
    pull towards the matches is weak and, measured here, every caption collapsed onto one direction; this term
    pulls each caption towards its own images from the first step."""
    logits = scale * text @ image.t()
    q_t2i = match / match.sum(1, keepdim=True)
    q_i2t = match.t() / match.t().sum(1, keepdim=True)
    return -(q_t2i * F.log_softmax(logits, 1)).sum(1).mean() - (q_i2t * F.log_softmax(logits.t(), 1)).sum(1).mean()


def _multi_hot(sets, space=LABEL_SPACE) -> np.ndarray:
    index = {name: i for i, name in enumerate(space)}
    out = np.zeros((len(sets), len(space)), np.float32)
    for r, s in enumerate(sets):
        for name in s:
            if name in index:
                out[r, index[name]] = 1.0
    return out


class TextTask:
    """The reid_core.training.engine Task for the text branch."""

    name = "text-sdm"

    def __init__(self, net: TextNet, vocab: tokens.Vocabulary, data: PetaData, feats: PetaFeatures,
                 train_idx: np.ndarray, options: TextTrainOptions, seed: int = 0):
        self.net, self.vocab, self.data, self.feats = net, vocab, data, feats
        self.train_idx, self.options, self.seed = np.asarray(train_idx), options, seed
        self.targets = np.array([head_targets(im.labels) for im in data.images], np.float32)
        self.labels = _multi_hot([im.labels for im in data.images])

    def module(self) -> TextNet:
        return self.net

    def batches(self, epoch: int, rank: int, world_size: int) -> list:
        rng = np.random.default_rng([self.seed, epoch, rank])
        order = rng.permutation(self.train_idx)[rank::world_size]
        B = self.options.batch_size
        out = []
        for start in range(0, len(order) - B // 2, B):  # a last batch under half size is dropped
            idx = order[start:start + B]
            flip = rng.random(len(idx)) < 0.5
            feats = np.where(flip[:, None], self.feats.flipped[idx], self.feats.plain[idx])
            caps = [random_caption(self.data.images[i].labels, rng) for i in idx]
            ids = self.vocab.encode([c.text.lower() for c in caps], self.net.config.context_length)
            masked, target = ids.copy(), np.full_like(ids, -100)
            can = ids >= tokens.SPECIAL
            pick = can & (rng.random(ids.shape) < self.options.mask_prob)
            target[pick] = ids[pick]
            masked[pick] = tokens.MASK
            out.append((torch.from_numpy(feats.astype(np.float32)), torch.from_numpy(self.targets[idx]),
                        torch.from_numpy(self.labels[idx]), torch.from_numpy(ids),
                        torch.from_numpy(_multi_hot([c.required for c in caps])), torch.from_numpy(masked),
                        torch.from_numpy(target)))
        return out

    def loss(self, module, batch) -> tuple[torch.Tensor, dict[str, float]]:
        feats, head_t, img_labels, ids, required, masked, mlm_t = batch
        attr = F.binary_cross_entropy_with_logits(module.head_logits(feats), head_t)
        image = module.image_embedding(feats)
        text, mentions = module.text_embedding_and_mentions(ids)
        # Which labels the caption names: a direct signal for the encoder from the first step (SDM alone, against
        # frozen features, first collapses every caption onto one direction and is slow to leave it).
        mention = F.binary_cross_entropy_with_logits(mentions, required)
        fits = (required @ img_labels.t()) >= required.sum(1, keepdim=True) - 0.5  # (T, B)
        match = (fits | torch.eye(len(ids), dtype=torch.bool)).float()
        scale = module.logit_scale.exp().clamp(max=100.0)
        sdm = sdm_loss(image, text, match, scale)
        nce = soft_nce(image, text, match, scale)
        total = self.options.sdm_weight * sdm + nce + self.options.attr_weight * (attr + mention)
        parts = {"sdm": float(sdm.detach()), "nce": float(nce.detach()), "attr": float(attr.detach()),
                 "mention": float(mention.detach())}
        # MLM on a quarter of the batch: a second pass over every caption would double the cost for an auxiliary
        quarter = max(1, len(ids) // 4)
        if self.options.mlm_weight > 0 and bool((mlm_t[:quarter] >= 0).any()):
            logits = module.mlm_logits(masked[:quarter])
            mlm = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), mlm_t[:quarter].reshape(-1),
                                  ignore_index=-100)
            total = total + self.options.mlm_weight * mlm
            parts["mlm"] = float(mlm.detach())
        return total, parts

    def after_step(self) -> None:
        pass

    def export(self) -> TextNet:
        return self.net


def build_vocabulary(data: PetaData, persons: list[str], seed: int) -> tokens.Vocabulary:
    """Tokens of many training captions (and the fixed phrasings' canonical words) of the training persons."""
    rng = np.random.default_rng([seed, 7])
    labels = data.labels_of()
    texts = []
    for p in persons:
        texts += [random_caption(labels[p], rng).text.lower() for _ in range(10)]
        texts += [describe_person(labels[p], s).text.lower() for s in EVAL_STYLES]
    return tokens.Vocabulary.build(texts)


def learned_score_fn(model: TextModel, feats: np.ndarray, mode: str = "combined"):
    """An evaluate.ScoreFn over PETA features: mode 'heads', 'cosine' or 'combined'."""
    from reid_core.textlearn.engine import LearnedText

    engine = LearnedText(model)

    def score(texts, gallery):
        probs = engine.head_probs(feats[gallery])
        emb = engine.image_embeddings(feats[gallery])
        text_emb = engine.text_embeddings(list(texts))
        rows = []
        for t, te in zip(texts, text_emb):
            s = engine.score(t, probs, emb, text_emb=te)
            if mode == "cosine" or s.heads is None:
                rows.append(s.cosine if mode != "heads" or s.heads is not None else np.zeros(len(gallery)))
            elif mode == "heads":
                rows.append(s.heads)
            else:
                rows.append(s.combined)
        return np.stack(rows)

    return score


@dataclass
class TextRunSummary:
    name: str
    embedder: str
    data: str
    train_persons: int
    val_persons: int
    test_persons: int
    train_images: int
    epochs: int
    resumed_from: int
    seconds: float
    embed_seconds: float
    model_path: str
    run_dir: str
    validation: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def train_text(peta: str | Path, name: str, embedder: str | None = None, config: TrainConfig = TEXT_TRAIN,
               options: TextTrainOptions = TextTrainOptions(), run_dir: str | Path | None = None,
               out_dir: str | Path | None = None, resume: bool = True, progress: bool = True, log=print,
               feature_cache: Path | None = None, max_persons: int = 0) -> TextRunSummary:
    """Train and save the text model NAME (weights/text/NAME.pt). max_persons > 0 trains on that many training
    persons only (smoke tests)."""
    from reid_core.embedding import DEFAULT_MODEL
    from reid_core.models import validate_name

    validate_name(name)
    options.check()
    embedder = embedder or DEFAULT_MODEL
    path = text_model_path(name, out_dir)
    run = Path(run_dir) if run_dir is not None else Path("runs") / "train" / name
    t0 = time.time()
    data = load_peta(peta)
    split = split_persons(data, options.split_seed)
    feats = embed_peta(data, embedder, feature_cache, log=log)
    embed_seconds = time.time() - t0
    train_persons = sorted(p for p, s in split.items() if s == "train")
    if max_persons:
        train_persons = train_persons[:max_persons]
    keep = set(train_persons)
    train_idx = np.array([i for i, im in enumerate(data.images) if im.person in keep])
    val_persons = {p for p, s in split.items() if s == "val"}
    run.mkdir(parents=True, exist_ok=True)
    vocab_file = run / "vocab.json"
    if resume and vocab_file.is_file():  # the checkpoint's embedding rows belong to this vocabulary
        vocab = tokens.Vocabulary(json.loads(vocab_file.read_text()))
    else:
        vocab = build_vocabulary(data, train_persons, config.seed)
        vocab_file.write_text(json.dumps(vocab.bpe_tokens))
    torch.manual_seed(config.seed)
    net_config = TextNetConfig(**{**asdict(options.net), "feat_dim": int(feats.plain.shape[1]),
                                  "n_heads_out": len(HEADS), "vocab_size": len(vocab),
                                  "n_labels": len(LABEL_SPACE)})
    net = TextNet(net_config)
    task = TextTask(net, vocab, data, feats, train_idx, options, seed=config.seed)
    log(f"text branch: {len(train_persons)} training persons ({len(train_idx)} images), {len(val_persons)} "
        f"validation persons, vocabulary {len(vocab)} tokens, {sum(p.numel() for p in net.parameters())} "
        f"parameters")

    def evaluate(network) -> dict[str, float]:
        model = TextModel(network, vocab, HEADS, embedder)
        cos = person_protocol(data, val_persons, learned_score_fn(model, feats.plain, "cosine"), ("sentence",))
        return {"val_cosine_mAP": cos.mAP}

    result = fit(task, config, run, resume, evaluate if val_persons else None, eval_every=5,
                 progress=progress, log=log)
    net.eval()
    model = TextModel(net, vocab, HEADS, embedder, meta={})
    validation = calibrate(model, data, feats, val_persons, log) if val_persons else {}
    model.meta = {"data": str(peta), "split_seed": options.split_seed, "train_persons": len(train_persons),
                  "val_persons": len(val_persons), "epochs": config.epochs, "config": asdict(config),
                  "options": {k: v for k, v in asdict(options).items() if k != "net"}, "created": time.time(),
                  "validation": validation, "last_epoch": result.history[-1] if result.history else {}}
    save_text_model(path, model)
    return TextRunSummary(name, embedder, str(peta), len(train_persons), len(val_persons),
                          sum(1 for s in split.values() if s == "test"), len(train_idx), config.epochs,
                          result.resumed_from, round(time.time() - t0, 1), round(embed_seconds, 1), str(path),
                          str(run), validation, result.history)


def calibrate(model: TextModel, data: PetaData, feats: PetaFeatures, val_persons: set[str], log=print) -> dict:
    """Head weights (2 x AUC - 1 on validation images, floor 0.05) and the heads/cosine mix that maximises the mean
    of the two protocols' mAP on validation persons. Held-out test persons are never looked at."""
    from reid_core.textlearn.engine import LearnedText

    idx = np.array([i for i, im in enumerate(data.images) if im.person in val_persons])
    probs = LearnedText(model).head_probs(feats.plain[idx])
    targets = np.array([head_targets(data.images[i].labels) for i in idx])
    auc = head_auc(probs, targets)
    model.head_weights = {h: float(max(0.05, 2 * a - 1)) for h, a in zip(HEADS, auc) if np.isfinite(a)}
    best, table = None, {}
    for w in FUSION_GRID:
        model.fusion = {"heads": w}
        fn = learned_score_fn(model, feats.plain, "combined")
        m = 0.5 * (person_protocol(data, val_persons, fn).mAP + attribute_protocol(data, val_persons, fn, seed=1).mAP)
        table[str(w)] = round(m, 4)
        if best is None or m > best[1]:
            best = (w, m)
    assert best is not None, "FUSION_GRID is not empty"
    model.fusion = {"heads": best[0]}
    mean_auc = float(np.mean(auc[np.isfinite(auc)])) if np.isfinite(auc).any() else float("nan")
    log(f"validation: mean head AUC {mean_auc:.3f}; heads/cosine mix {table} -> heads weight {best[0]}")
    return {"mean_head_auc": mean_auc, "fusion_grid": table, "heads_weight": best[0]}
