"""Text search over the store's tracks: one interface over the attribute engine and the CLIP engine.

Engines
  attributes  The query is parsed into constraints (reid_core.text_query). Each track gets, per constraint, an
              agreement in [0, 1]: the model's probability for an attribute (1 - p when negated); for a colour,
              sqrt(sum of palette credit x share of the region) capped at 1, so a garment covering half its window
              (skin, shadow and background fill the rest) still scores 0.7. The track's score is the weighted mean
              of its agreements (weights in text_query.WEIGHTS), so nothing is a hard filter: a track that misses
              one attribute the model got wrong still ranks above tracks that miss everything.
  clip        Cosine between the CLIP text embedding and the track's embedding (mean of its crops' embeddings,
              re-normalised). Needs a checkpoint; see reid_core.clip_engine.
  learned     A text model trained on PETA (reid train text; reid_core.textlearn): PETA attribute heads read the
              query through text_query.parse_heads (hair colour, footwear, skirts, age, kinds of bag...), and a
              text encoder embeds the query into the store's own feature space; both read the features every crop
              already has, so nothing is computed per crop. Needs a model file; see textlearn/model.py.
  auto        Every engine available: attributes, plus learned when a text model for the store's embedder exists,
              plus CLIP when a checkpoint is configured; learned and CLIP scores are min-max scaled and mixed with
              the attribute score (LEARNED_WEIGHT, CLIP_WEIGHT). Below, the attributes+CLIP case as before:
              Both when a CLIP checkpoint is configured, else attributes. Combined score =
              (1 - CLIP_WEIGHT) x attribute score + CLIP_WEIGHT x CLIP cosine min-max scaled over the searched
              tracks (cosines of different checkpoints live on different scales; the scaling puts them on the
              attribute score's 0-1 range). If the parser understood nothing, CLIP alone decides.

Per-crop attributes and CLIP features are computed lazily on first search and cached in the store
("attributes:v1" / "clip:<checkpoint hash>" annotations); a track is described by up to MAX_CROPS_PER_TRACK crops
spread evenly along it. Each result carries the frame and box of the track's most representative crop.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from reid_core.attributes import (
    ANNOTATION_KIND,
    CHROMATIC,
    COLOURS,
    CropAttributes,
    RegionColour,
    TrackAttributes,
    aggregate,
    caption,
    load_attribute_model,
)
from reid_core.crops import decode_image
from reid_core.errors import InputError, WeightsError
from reid_core.sampling import track_features
from reid_core.text_query import (
    ANY,
    BOTH,
    LOWER,
    UPPER,
    ColourSpec,
    Constraint,
    HeadQuery,
    ParsedQuery,
    parse,
    parse_heads,
)
from reid_core.types import Box, Track

ENGINES = ("attributes", "learned", "clip", "auto")
MAX_CROPS_PER_TRACK = 24
CLIP_WEIGHT = 0.5
# relative to the attribute score's 1 - CLIP_WEIGHT; fixed a priori, not tuned on any benchmark (bench/text_search.py
# reports the outcome)
LEARNED_WEIGHT = 0.5
MAX_TOP_K = 1000
_CI = {c: i for i, c in enumerate(COLOURS)}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Agreement:
    constraint: Constraint
    value: float  # 0..1, how well the track satisfies it


@dataclass(frozen=True)
class TextHit:
    video_id: str
    video: str  # the video's path as ingested
    camera: str
    track_id: int
    frame: int
    box: Box
    crop_key: str
    score: float
    caption: str
    attribute_score: float | None = None
    clip_cosine: float | None = None
    agreements: tuple[Agreement, ...] = ()
    learned_score: float | None = None  # the learned engine's own score (min-max scaled over the tracks)

    def to_json(self) -> dict:
        return {"video": self.video, "track_id": self.track_id, "frame": self.frame, "box": self.box.as_list(),
                "score": round(float(self.score), 4), "caption": self.caption}

    def explanation(self) -> str:
        return ", ".join(f"{a.constraint.describe()} {a.value:.2f}" for a in self.agreements)


@dataclass(frozen=True)
class TextSearchResult:
    query: str
    engine: str  # what actually ran: "attributes", "learned", "clip" or a "+"-joined combination
    unknown_words: tuple[str, ...]
    hits: tuple[TextHit, ...]
    parsed: ParsedQuery | None = None
    tracks_searched: int = 0
    notes: tuple[str, ...] = field(default=())
    heads: HeadQuery | None = None  # the learned engine's reading of the query

    def to_json(self) -> dict:
        return {"query": self.query, "engine": self.engine, "unknown_words": list(self.unknown_words),
                "results": [h.to_json() for h in self.hits]}

    def summary(self) -> list[tuple[str, str]]:
        """(label, text) lines the CLI and the app show above the results, each in its own markup: what ran,
        what of the query was understood and what was ignored, so a user can rephrase."""
        lines = [("engine", f"{self.engine} ({self.tracks_searched} tracks searched, {len(self.hits)} shown)")]
        if self.parsed is not None and "attributes" in self.engine:
            lines.append(("understood", self.parsed.describe()))
        if self.heads is not None and "learned" in self.engine:
            lines.append(("understood (learned heads)", self.heads.describe()))
        if self.unknown_words:
            lines.append(("not understood (ignored)", ", ".join(self.unknown_words)))
        return lines + [("note", n) for n in self.notes]


# ---- scoring ------------------------------------------------------------------------------------------------------
def _shade_factor(lightness: float, shade: str | None) -> float:
    """Less credit for a colour of the wrong shade: "dark blue" asked, mid-blue jeans (lightness ~0.45) seen.
    Full credit up to 0.3 lightness for dark (from 0.6 for light), falling linearly to 0.3 over 0.2."""
    if shade == "dark":
        return 1.0 - 0.7 * float(np.clip((lightness - 0.3) / 0.2, 0.0, 1.0))
    if shade == "light":
        return 1.0 - 0.7 * float(np.clip((0.6 - lightness) / 0.2, 0.0, 1.0))
    return 1.0


def colour_agreement(region: RegionColour, spec: ColourSpec) -> float:
    total = 0.0
    for colour, credit in spec.credits:
        i = _CI[colour]
        factor = _shade_factor(float(region.lightness[i]), spec.shade) if colour in CHROMATIC | {"grey"} else 1.0
        total += credit * float(region.share[i]) * factor
    return float(np.sqrt(min(1.0, total)))


def agreement(track: TrackAttributes, c: Constraint) -> float:
    if c.kind == "attribute":
        p = track.prob(c.target)
        return p if c.positive else 1.0 - p
    assert c.colour is not None, "parse() gives every colour constraint a ColourSpec"
    up, low = colour_agreement(track.upper, c.colour), colour_agreement(track.lower, c.colour)
    value = {UPPER: up, LOWER: low, ANY: max(up, low), BOTH: 0.5 * (up + low)}[c.target]
    return value if c.positive else 1.0 - value


def attribute_score(track: TrackAttributes, parsed: ParsedQuery) -> tuple[float, tuple[Agreement, ...]]:
    agreements = tuple(Agreement(c, agreement(track, c)) for c in parsed.constraints)
    weights = np.array([a.constraint.weight for a in agreements])
    if not len(agreements) or weights.sum() <= 0:
        return 0.0, agreements
    return float(np.dot(weights, [a.value for a in agreements]) / weights.sum()), agreements


# ---- describing tracks --------------------------------------------------------------------------------------------
def sample_indices(n: int, k: int = MAX_CROPS_PER_TRACK) -> list[int]:
    """Up to k indices spread evenly over 0..n-1 (both ends included)."""
    if n <= k:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, k).round().astype(int).tolist()))


@dataclass
class TrackView:
    """A track with the crops that describe it."""

    track: Track
    keys: list[str]  # sampled crop keys
    weights: list[float]  # crop quality (box height x detector score)
    attributes: TrackAttributes | None = None
    clip_feature: np.ndarray | None = None
    clip_representative: int | None = None
    head_probs: np.ndarray | None = None  # learned engine: PETA head probabilities (weighted mean over crops)
    learned_feature: np.ndarray | None = None  # learned engine: adapted mean of the stored crop features


class TextSearcher:
    """Text search over one store. Shareable between threads: models are locked inside, the store is LMDB."""

    def __init__(self, store, clip=None, max_crops_per_track: int = MAX_CROPS_PER_TRACK, learned=None,
                 learned_problem: str | None = None):
        self.store = store
        self.clip = clip  # a ClipEngine, or None
        self.learned = learned  # a textlearn.engine.LearnedText, or None
        self.learned_problem = learned_problem  # why there is none (shown by auto, raised by learned)
        self.max_crops = max_crops_per_track

    # -- per-crop caches --
    def _crop_images(self, keys: Sequence[str]) -> list[np.ndarray]:
        return [decode_image(c.jpeg) for c in self.store.get_crops(keys, jpeg=True)]

    def crop_attributes(self, keys: Sequence[str], progress: Progress | None = None,
                        chunk: int = 128) -> dict[str, CropAttributes]:
        """Attributes of the given crops, from the store's cache or computed (and cached) now."""
        out: dict[str, CropAttributes] = {}
        for key, raw in self.store.get_annotations(ANNOTATION_KIND, keys).items():
            try:
                out[key] = CropAttributes.from_bytes(raw)
            except ValueError:
                pass  # an older layout: recompute below
        missing = [k for k in keys if k not in out]
        if progress:  # counted over all the crops asked for; cached ones are done from the start
            progress(len(keys) - len(missing), len(keys))
        if missing:
            model = load_attribute_model()
            for start in range(0, len(missing), chunk):
                part = missing[start:start + chunk]
                computed = dict(zip(part, model.predict(self._crop_images(part))))
                self.store.put_annotations(ANNOTATION_KIND, {k: v.to_bytes() for k, v in computed.items()})
                out.update(computed)
                if progress:
                    progress(len(keys) - len(missing) + min(start + chunk, len(missing)), len(keys))
        return out

    def crop_clip_features(self, keys: Sequence[str], progress: Progress | None = None,
                           chunk: int = 64) -> dict[str, np.ndarray]:
        kind = self.clip.cache_kind
        dim = self.clip.info.embed_dim
        out = {}
        for key, raw in self.store.get_annotations(kind, keys).items():
            vec = np.frombuffer(raw, np.float16)
            if vec.shape == (dim,):
                out[key] = vec.astype(np.float32)
        missing = [k for k in keys if k not in out]
        if progress:
            progress(len(keys) - len(missing), len(keys))
        for start in range(0, len(missing), chunk):
            part = missing[start:start + chunk]
            feats = self.clip.encode_images(self._crop_images(part))
            # float16 halves the cache; cosine rankings do not change at that precision
            self.store.put_annotations(kind, {k: f.astype(np.float16).tobytes() for k, f in zip(part, feats)})
            out.update(zip(part, feats))
            if progress:
                progress(len(keys) - len(missing) + min(start + chunk, len(missing)), len(keys))
        return out

    # -- per track --
    def views(self, video_id: str | None = None) -> list[TrackView]:
        out = []
        for t in self.store.tracks(video_id):
            idx = sample_indices(len(t.keys), self.max_crops)
            out.append(TrackView(t, [t.keys[i] for i in idx],
                                 [max(t.boxes[i].h, 1.0) * max(t.scores[i], 0.05) for i in idx]))
        return out

    def describe(self, views: list[TrackView], progress: Progress | None = None) -> None:
        """Fill each view's TrackAttributes (cached per crop in the store)."""
        keys = [k for v in views for k in v.keys]
        attrs = self.crop_attributes(keys, progress)
        for v in views:
            v.attributes = aggregate([attrs[k] for k in v.keys], v.weights)

    def embed(self, views: list[TrackView], progress: Progress | None = None) -> None:
        keys = [k for v in views for k in v.keys]
        feats = self.crop_clip_features(keys, progress)
        for v in views:
            m = np.stack([feats[k] for k in v.keys])
            mean = m.mean(0)
            mean /= max(float(np.linalg.norm(mean)), 1e-12)
            v.clip_feature = mean
            v.clip_representative = int(np.argmax(m @ mean))

    def learned_describe(self, views: list[TrackView]) -> None:
        """Head probabilities and the adapted feature of each track, from the features the store holds."""
        frames = {k: f for v in views for k, f in zip(v.track.keys, v.track.frames)}
        feats = np.concatenate([track_features(self.store, v.keys, [frames[k] for k in v.keys], v.track.track_id)
                                for v in views]) if views else np.zeros((0, 0), np.float32)
        probs = self.learned.head_probs(feats)
        at = 0
        means = []
        for v in views:
            n = len(v.keys)
            w = np.asarray(v.weights, np.float64)
            v.head_probs = (probs[at:at + n] * w[:, None]).sum(0) / max(w.sum(), 1e-12)
            m = feats[at:at + n].mean(0)
            means.append(m / max(float(np.linalg.norm(m)), 1e-12))
            at += n
        for v, e in zip(views, self.learned.image_embeddings(np.stack(means)) if means else []):
            v.learned_feature = e

    # -- search --
    def resolve_engine(self, engine: str) -> str:
        if engine not in ENGINES:
            raise InputError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        if engine == "clip" and self.clip is None:
            from reid_core.clip_engine import NO_CHECKPOINT_HELP

            raise WeightsError(NO_CHECKPOINT_HELP)
        if engine == "learned" and self.learned is None:
            from reid_core.textlearn.model import NO_MODEL_HELP, default_text_model

            raise WeightsError(self.learned_problem or NO_MODEL_HELP.format(name=default_text_model()))
        if engine == "auto":
            return "+".join(["attributes"] + (["learned"] if self.learned is not None else [])
                            + (["clip"] if self.clip is not None else []))
        return engine

    def search(self, query: str, top_k: int = 10, engine: str = "auto", video_id: str | None = None,
               progress: Progress | None = None) -> TextSearchResult:
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise InputError(f"top_k must be a positive whole number, got {top_k!r}")
        top_k = min(top_k, MAX_TOP_K)
        ran = self.resolve_engine(engine)
        uses_attributes = "attributes" in ran.split("+")
        uses_learned = "learned" in ran.split("+")
        uses_clip = "clip" in ran.split("+")
        parsed = parse(query)  # also validates the query for the CLIP engine (empty, too long)
        heads = parse_heads(query) if uses_learned else None
        notes: list[str] = []
        if engine == "auto" and self.learned is None and self.learned_problem:
            notes.append(f"learned engine off: {self.learned_problem.splitlines()[0]}")
        if parsed.corrections:
            notes.append("read " + ", ".join(f"{a!r} as {b!r}" for a, b in parsed.corrections))
        views = self.views(video_id)
        unknown = _unknown(parsed, heads, ran)
        if not views:
            notes.append("the store has no tracks yet: ingest a video first")
            return TextSearchResult(query, ran, unknown, (), parsed, 0, tuple(notes), heads)
        if uses_attributes and not parsed.understood and ran == "attributes":
            notes.append("no word of the query is one the attribute engine knows; try e.g. 'woman in a red top "
                         "and blue jeans, no bag'")
            return TextSearchResult(query, ran, parsed.unknown_words, (), parsed, len(views), tuple(notes), heads)

        # Captions always come from attributes, so they are computed whichever engine ranks.
        try:
            self.describe(views, progress)
        except WeightsError:
            if ran != "clip":
                raise
            notes.append("attribute model missing: results have no captions")
        attr_scores = np.zeros(len(views))
        agreements: list[tuple[Agreement, ...]] = [()] * len(views)
        if uses_attributes and parsed.understood:
            for i, v in enumerate(views):
                assert v.attributes is not None, "describe() sets every view's attributes"
                attr_scores[i], agreements[i] = attribute_score(v.attributes, parsed)
        cos = None
        if uses_clip:
            self.embed(views, progress)
            text = self.clip.encode_text([query])[0]
            cos = np.array([float(v.clip_feature @ text) for v in views])
        learned = None
        if uses_learned:
            self.learned_describe(views)
            assert all(v.head_probs is not None and v.learned_feature is not None for v in views), \
                "learned_describe() sets every view's head_probs and learned_feature"
            ls = self.learned.score(query, np.stack([cast(np.ndarray, v.head_probs) for v in views]),
                                    np.stack([cast(np.ndarray, v.learned_feature) for v in views]), heads)
            learned = _minmax(ls.combined)
        scores: np.ndarray
        if ran == "attributes":
            scores = attr_scores
        elif ran == "clip":
            assert cos is not None, "the clip engine ran"
            scores = cos
        elif ran == "learned":
            assert learned is not None, "the learned engine ran"
            scores = learned
        else:
            # auto: attribute score (when it understood anything) mixed with each other engine's scaled score
            # (relative weights, normalised over what ran: attributes+clip is 0.5/0.5 as before)
            parts = [(learned, LEARNED_WEIGHT)] if learned is not None else []
            parts += [(_minmax(cos), CLIP_WEIGHT)] if cos is not None else []
            if parsed.understood:
                parts.append((attr_scores, 1.0 - CLIP_WEIGHT))
            total = sum(w for _, w in parts)
            # a sum of arrays scaled by floats is an array (mypy sees sum()'s int start)
            scores = cast(np.ndarray, sum(x * w for x, w in parts) / total)

        # Ties (identical descriptions) keep a stable order: longer tracks first, then track id.
        def rank_key(i: int) -> tuple:
            return -round(float(scores[i]), 9), -len(views[i].track), views[i].track.track_id

        order = sorted(range(len(views)), key=rank_key)[:top_k]
        videos = {v.video_id: v for v in self.store.videos()}
        hits = []
        for i in order:
            v = views[i]
            if ran == "clip" and v.clip_representative is not None:
                rep = v.clip_representative
            else:
                rep = v.attributes.representative if v.attributes is not None else 0
            key = v.keys[rep]
            pos = v.track.keys.index(key)
            rec = videos.get(v.track.video_id)
            hits.append(TextHit(
                v.track.video_id, rec.path if rec else v.track.video_id, v.track.camera, v.track.track_id,
                v.track.frames[pos], v.track.boxes[pos], key, float(scores[i]),
                caption(v.attributes) if v.attributes is not None else "",
                float(attr_scores[i]) if uses_attributes and parsed.understood else None,
                float(cos[i]) if cos is not None else None, agreements[i],
                float(learned[i]) if learned is not None else None))
        return TextSearchResult(query, ran, unknown, tuple(hits), parsed, len(views), tuple(notes), heads)


def _unknown(parsed: ParsedQuery, heads: HeadQuery | None, ran: str) -> tuple[str, ...]:
    """Words no engine that ran could use: with the learned engine, those neither parser understood."""
    engines = ran.split("+")
    if "learned" in engines and heads is not None:
        if "attributes" in engines:
            return tuple(u for u in heads.unknown_words if u.split(" (")[0] in parsed.unknown_words)
        return heads.unknown_words
    return parsed.unknown_words if "attributes" in engines else ()


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(x)), float(np.max(x))
    return np.full_like(x, 0.5) if hi - lo < 1e-9 else (x - lo) / (hi - lo)


def _store_embedder(store) -> str:
    from reid_core.embedding import DEFAULT_MODEL

    held = sorted({r.settings.get("embedder") for r in store.runs()} - {None})
    return held[0] if held else DEFAULT_MODEL


def load_learned_for(store, text_model: str | None = None):
    """(LearnedText or None, why not): the text model, if one exists and reads this store's embedder's features."""
    from reid_core.textlearn.engine import load_learned

    try:
        learned = load_learned(text_model)
    except WeightsError as e:
        return None, str(e)
    held = _store_embedder(store)
    if learned.embedder != held:
        return None, (f"text model {learned.model.name} was trained on {learned.embedder} features but this store "
                      f"holds {held}'s; retrain it with `reid train text --peta DIR --embedder {held}`")
    return learned, None


def searcher_for(store, engine: str = "auto", clip_checkpoint: str | Path | None = None,
                 clip_model: str | None = None, text_model: str | None = None) -> TextSearcher:
    """A searcher with CLIP loaded when asked for or configured ($REID_CLIP_CHECKPOINT), and the learned text model
    ($REID_TEXT_MODEL, default peta-text) when one is trained."""
    from reid_core.clip_engine import checkpoint_from_env, load_clip

    clip = None
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "clip" or clip_checkpoint or (engine == "auto" and checkpoint_from_env()):
        if engine not in ("attributes", "learned"):
            clip = load_clip(clip_checkpoint, clip_model)
    learned, problem = (load_learned_for(store, text_model) if engine in ("learned", "auto") else (None, None))
    return TextSearcher(store, clip, learned=learned, learned_problem=problem)


def search_text(store, query: str, top_k: int = 10, engine: str = "auto", clip_checkpoint: str | Path | None = None,
                clip_model: str | None = None, video_id: str | None = None,
                text_model: str | None = None) -> TextSearchResult:
    return searcher_for(store, engine, clip_checkpoint, clip_model, text_model).search(query, top_k, engine,
                                                                                       video_id)



def prepare(store, video_id: str | None = None, progress: Progress | None = None) -> int:
    """Describe every track now (attributes cached per crop in the store) so the first search is instant; meant
    to run right after an ingest. Returns how many crops were looked at (cached ones cost nothing)."""
    searcher = TextSearcher(store)
    views = searcher.views(video_id)
    searcher.describe(views, progress)
    return sum(len(v.keys) for v in views)
