"""Text-to-person retrieval on PETS09-S2L1: a query in words per labelled actor, ranked over the video's tracks;
and, with --peta, on the held-out PETA identities of the learned text model's split.

    .venv/bin/python bench/text_search.py [--store DIR] [--engine attributes|learned|clip|auto] [--json OUT]
    .venv/bin/python bench/text_search.py --peta ../shared/data/peta [--engines attributes,learned,auto]

PETA (reid_core.textlearn.evaluate): only the split's test persons are scored (never trained on, never used to pick
head weights or the mix; those come from the validation persons), per subset, with two protocols: "person" (full
descriptions in three phrasings, relevant = that person's images) and "attribute" (two facts, relevant = every image
whose labels include them). Engines: attributes (crossroad-0230 + colour naming), learned-heads, learned-cosine
(the text encoder alone), learned (both, mixed as the model file says), auto (attributes + learned as search mixes).

Ingests the whole video into --store (default bench/out/pets_full_store; an existing complete ingest is reused),
maps every track to an actor (majority gt id with IoU >= 0.5 over its boxes, then persons.json; tracks matching no
gt box are distractors), builds one query per actor from tests/data/pets_person_labels.json, and reports R1, R5
and mAP (relevant items: that actor's tracks). Several actors share a description (dark jacket and jeans), so
identical queries are grouped and the best R1 any ranking could reach is printed beside the measured one.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reid_core.groundtruth import load_mot_gt, load_persons, majority_gt_id  # noqa: E402
from reid_core.ingest import ingest  # noqa: E402
from reid_core.store import Store  # noqa: E402
from reid_core.text_query import parse  # noqa: E402
from reid_core.text_search import searcher_for  # noqa: E402

PETS = ROOT.parent / "shared" / "data" / "pets09_s2l1"
LABELS = ROOT / "tests" / "data" / "pets_person_labels.json"


def query_from_labels(lab: dict) -> str:
    """A plain description built mechanically from one actor's labels (primary colours only)."""
    def piece(colour: str, shade: str | None, garment: str) -> str:
        return " ".join(x for x in (shade, colour, garment) if x)

    who = "man" if lab["gender"] == "male" else "woman"
    text = (f"{who} in a {piece(lab['upper'], lab.get('upper_shade'), lab['upper_garment'])} and "
            f"{piece(lab['lower'], lab.get('lower_shade'), lab['lower_garment'])}")
    extras = []
    if lab.get("hair") == "long":
        extras.append("long hair")
    if lab.get("hat"):
        extras.append(f"a {lab['hat_colour']} hat" if lab.get("hat_colour") else "a hat")
    if lab.get("backpack"):
        extras.append("a backpack")
    if lab.get("bag"):
        extras.append("a bag")
    if extras:
        text += ", with " + " and ".join(extras)
    return text


def track_persons(tracks, gt_path: Path, persons_path: Path, min_iou: float = 0.5) -> dict[int, str | None]:
    gt = load_mot_gt(gt_path)
    persons = load_persons(persons_path)
    out = {}
    for t in tracks:
        gid, _ = majority_gt_id(t, gt, min_iou)
        out[t.track_id] = persons.get(gid) if gid is not None else None
    return out


def average_precision(relevant: list[bool]) -> float:
    hits, total, n_rel = 0, 0.0, sum(relevant)
    for rank, rel in enumerate(relevant, 1):
        if rel:
            hits += 1
            total += hits / rank
    return total / n_rel if n_rel else 0.0


def chance_map(n_rel: int, n: int, trials: int = 2000, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    base = [True] * n_rel + [False] * (n - n_rel)
    return float(np.mean([average_precision(list(rng.permutation(base))) for _ in range(trials)]))


def _meaning(query: str) -> frozenset:
    return frozenset((c.kind, c.target, c.positive, c.colour, round(c.weight, 4)) for c in parse(query).constraints)


def evaluate(store: Store, engine: str, labels: dict, progress=None, text_model: str | None = None) -> dict:
    searcher = searcher_for(store, engine, text_model=text_model)
    tracks = store.tracks()
    owner = track_persons(tracks, PETS / "gt.txt", PETS / "persons.json")
    rows = []
    for pid, lab in sorted(labels.items()):
        query = query_from_labels(lab)
        t0 = time.time()
        res = searcher.search(query, top_k=len(tracks), engine=engine)
        seconds = time.time() - t0
        ranked = [owner[h.track_id] for h in res.hits]
        rel = [p == pid for p in ranked]
        first = rel.index(True) + 1 if any(rel) else None
        ahead = []
        for h, p in zip(res.hits, ranked):
            if p == pid:
                break
            ahead.append(f"{p or 'none'}:{h.score:.3f}")
        best = next((h.score for h, p in zip(res.hits, ranked) if p == pid), None)
        rows.append({"person": pid, "query": query, "unknown_words": list(res.unknown_words),
                     "relevant_tracks": sum(rel), "first_correct_rank": first, "r1": float(rel[0]),
                     "r5": float(any(rel[:5])), "ap": average_precision(rel),
                     "gap_to_top": None if best is None else round(res.hits[0].score - best, 4),
                     "chance_ap": chance_map(sum(rel), len(rel)), "top_score": res.hits[0].score,
                     "best_correct_score": best, "ranked_ahead": ahead[:6],
                     "top_caption": res.hits[0].caption, "seconds": round(seconds, 3), "engine": res.engine})
    # Queries that differ only in words the engine cannot tell apart ("long coat" / "leather jacket") give one
    # ranking, so at most one actor of such a group can be ranked first.
    groups = defaultdict(list)
    for r in rows:
        groups[_meaning(r["query"])].append(r["person"])
    r1_ceiling = len(groups) / len(rows)
    persons_with_tracks = sorted({p for p in owner.values() if p})
    return {
        "engine": rows[0]["engine"] if rows else engine, "tracks": len(tracks),
        "tracks_per_person": {p: sum(1 for v in owner.values() if v == p) for p in persons_with_tracks},
        "distractor_tracks": sum(1 for v in owner.values() if v is None),
        "R1": float(np.mean([r["r1"] for r in rows])), "R5": float(np.mean([r["r5"] for r in rows])),
        "mAP": float(np.mean([r["ap"] for r in rows])), "chance_mAP": float(np.mean([r["chance_ap"] for r in rows])),
        "chance_R1": float(np.mean([r["relevant_tracks"] / len(tracks) for r in rows])),
        "R1_ceiling_identical_queries": r1_ceiling,
        "identical_query_groups": [g for g in groups.values() if len(g) > 1],
        "rows": rows,
    }


PETA_ENGINES = ("attributes", "learned-heads", "learned-cosine", "learned", "auto")


def peta_score_fns(data, feats, persons: set[str], text_model: str | None = None) -> dict:
    """engine -> evaluate.ScoreFn over PETA images (held-out ones only are ever passed in)."""
    import cv2

    from reid_core.attributes import aggregate, load_attribute_model
    from reid_core.text_search import CLIP_WEIGHT, LEARNED_WEIGHT, _minmax, attribute_score
    from reid_core.textlearn.engine import load_learned
    from reid_core.training.text import learned_score_fn

    idx = [i for i, im in enumerate(data.images) if im.person in persons]
    model = load_attribute_model()
    described = dict(zip(idx, (aggregate([a]) for a in model.predict([cv2.imread(data.images[i].path)
                                                                      for i in idx]))))

    def attributes(texts, gallery):
        rows = []
        for t in texts:
            parsed = parse(t)
            rows.append([attribute_score(described[int(g)], parsed)[0] for g in gallery])
        return np.asarray(rows)

    fns = {"attributes": attributes}
    try:
        learned = load_learned(text_model)
    except Exception as e:  # no model trained: the attribute engine is still measured
        print(f"learned engine skipped: {e}")
        return fns
    for mode in ("heads", "cosine", "combined"):
        fns["learned" if mode == "combined" else f"learned-{mode}"] = learned_score_fn(learned.model, feats.plain,
                                                                                       mode)

    def auto(texts, gallery):
        a, lc = attributes(texts, gallery), fns["learned"](texts, gallery)
        out = []
        for t, ar, lr in zip(texts, a, lc):
            understood = parse(t).understood
            wa = (1.0 - CLIP_WEIGHT) * understood  # the same mix as TextSearcher.search
            out.append((wa * ar + LEARNED_WEIGHT * _minmax(lr)) / (wa + LEARNED_WEIGHT))
        return np.asarray(out)

    fns["auto"] = auto
    return fns


def evaluate_peta(root: Path, engines: list[str], text_model: str | None = None) -> dict:
    from reid_core.textlearn.evaluate import attribute_protocol, person_protocol
    from reid_core.textlearn.model import find_text_model, load_text_model
    from reid_core.textlearn.peta import embed_peta, load_peta, split_persons

    data = load_peta(root)
    seed = 0
    embedder = None
    try:
        meta = load_text_model(find_text_model(text_model))
        seed, embedder = int(meta.meta.get("split_seed", 0)), meta.embedder
    except Exception:
        pass
    from reid_core.embedding import DEFAULT_MODEL

    split = split_persons(data, seed)
    test = {p for p, s in split.items() if s == "test"}
    feats = embed_peta(data, embedder or DEFAULT_MODEL)
    fns = peta_score_fns(data, feats, test, text_model)
    out = {"split_seed": seed, "test_persons": len(test), "engines": {}}
    for name in engines:
        if name not in fns:
            continue
        t0 = time.time()
        person = person_protocol(data, test, fns[name])
        attribute = attribute_protocol(data, test, fns[name], seed=123)
        out["engines"][name] = {"person": person.to_dict(), "attribute": attribute.to_dict(),
                                "seconds": round(time.time() - t0, 1)}
        print(f"PETA held-out  {name:15s} person: mAP {person.mAP:.3f} R1 {person.R1:.3f} R5 {person.R5:.3f} "
              f"(R1 ceiling {person.R1_ceiling:.2f}, {person.queries} queries)   attribute: mAP {attribute.mAP:.3f} "
              f"R1 {attribute.R1:.3f} ({attribute.queries} queries)", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, default=ROOT / "bench" / "out" / "pets_full_store")
    ap.add_argument("--engine", default="attributes", choices=["attributes", "learned", "clip", "auto"])
    ap.add_argument("--labels", type=Path, default=LABELS)
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "out" / "text_search.json")
    ap.add_argument("--peta", type=Path, default=None, help="score the held-out PETA persons instead of PETS")
    ap.add_argument("--engines", default=",".join(PETA_ENGINES), help="with --peta: engines to score")
    ap.add_argument("--text-model", default=None)
    args = ap.parse_args()
    if args.peta is not None:
        report = evaluate_peta(args.peta, args.engines.split(","), args.text_model)
        path = args.json.with_name("text_search_peta.json") if args.json.name == "text_search.json" else args.json
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1))
        print(f"wrote {path}")
        return

    store = Store(args.store)
    t0 = time.time()
    result = ingest(PETS / "vtest.avi", store, camera="pets-view1")
    print(f"store {args.store}: {'reused' if result.reused else 'ingested'} {result.tracks} tracks, "
          f"{result.crops} crops ({time.time() - t0:.0f} s)")
    labels = json.loads(args.labels.read_text())["persons"]
    t0 = time.time()
    report = evaluate(store, args.engine, labels, text_model=args.text_model)
    report["seconds_total"] = round(time.time() - t0, 1)

    print(f"\nengine={report['engine']}  tracks={report['tracks']} "
          f"(distractors {report['distractor_tracks']}; per person {report['tracks_per_person']})\n")
    print(f"{'person':7} {'rank':>4} {'gap':>5} {'R1':>3} {'R5':>3} {'AP':>5} {'chance':>6}  query  |  ranked ahead "
          "(person:score)")
    for r in report["rows"]:
        print(f"{r['person']:7} {r['first_correct_rank'] or '-':>4} {r['gap_to_top'] or 0:5.3f} {r['r1']:3.0f} "
              f"{r['r5']:3.0f} {r['ap']:5.2f} {r['chance_ap']:6.2f}  {r['query']}  |  "
              f"{' '.join(r['ranked_ahead']) or '-'}"
              + (f"  [unknown: {', '.join(r['unknown_words'])}]" if r["unknown_words"] else ""))
    print(f"\nR1 {report['R1']:.2f}  R5 {report['R5']:.2f}  mAP {report['mAP']:.2f}   "
          f"(chance: R1 {report['chance_R1']:.2f}, mAP {report['chance_mAP']:.2f})")
    print(f"queries the engine cannot tell apart: {report['identical_query_groups']} -> best reachable R1 "
          f"{report['R1_ceiling_identical_queries']:.2f}")
    print(f"search time: {report['seconds_total']} s for {len(report['rows'])} queries "
          f"(first query includes describing every track; later ones use the store's cache)")
    if args.engine != "attributes" and args.json.name == "text_search.json":
        args.json = args.json.with_name(f"text_search_{args.engine}.json")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
