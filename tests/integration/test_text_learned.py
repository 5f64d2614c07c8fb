"""The learned text branch: PETA heads + text encoder (reid_core.textlearn, reid_core.training.text).

Everything here trains its own tiny model on a few real PETA images; no test needs a pre-trained text model."""
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from reid_core.errors import WeightsError
from reid_core.text_query import parse_heads
from reid_core.textlearn.captions import EVAL_STYLES, describe_person, random_caption
from reid_core.textlearn.model import TextNetConfig
from tests.integration.conftest import SHARED

PETA = SHARED / "data" / "peta"
TINY_NET = TextNetConfig(width=32, layers=1, attention_heads=2, head_hidden=32, n_ctx=2)


@pytest.fixture(scope="module")
def tiny_peta(tmp_path_factory) -> Path:
    """SARC3D's first 8 people (4 views each) as a PETA folder of its own."""
    src = PETA / "SARC3D"
    dest = tmp_path_factory.mktemp("peta") / "SARC3D"
    dest.mkdir()
    lines = [ln for ln in (src / "Label.txt").read_text().splitlines() if ln.split() and int(ln.split()[0]) <= 8]
    (dest / "Label.txt").write_text("\n".join(lines) + "\n")
    for path in sorted(src.iterdir()):
        if path.suffix == ".bmp" and int(path.name.split("_")[0]) <= 8:
            (dest / path.name).write_bytes(path.read_bytes())
    return dest


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("peta_features")  # shared: the 32 images are embedded once


@pytest.fixture(scope="module")
def tiny_model(tiny_peta, tmp_path_factory, feature_cache):
    from reid_core.training.text import TEXT_TRAIN, TextTrainOptions, train_text

    out = tmp_path_factory.mktemp("text_models")
    summary = train_text(tiny_peta, "tiny-text", config=replace(TEXT_TRAIN, epochs=2, warmup_epochs=0.5),
                         options=TextTrainOptions(batch_size=4, net=TINY_NET), run_dir=out / "run", out_dir=out,
                         resume=False, progress=False, log=lambda m: None, feature_cache=feature_cache)
    return summary


# ---- parser -------------------------------------------------------------------------------------------------------
def _targets(query: str) -> dict[str, bool]:
    return {t: c.positive for c in parse_heads(query).constraints for t, _ in c.targets}


def test_parser_maps_words_the_attribute_engine_cannot_use():
    t = _targets("blonde woman in a skirt")
    assert t["hairYellow"] and t["lowerBodyShortSkirt"] and t["lowerBodyLongSkirt"] and t["personalMale"] is False
    assert _targets("man with white hair")["hairWhite"]
    q = parse_heads("man with a yellow bag")
    assert _targets("man with a yellow bag")["carryingMessengerBag"]
    assert any("bag colours are not labelled" in u for u in q.unknown_words)  # said, not silently dropped
    t = _targets("old man in shorts and white sneakers with sunglasses")
    assert t["personalLarger60"] and t["lowerBodyShorts"] and t["footwearWhite"] and t["footwearSneakers"]
    assert t["accessorySunglasses"]
    assert _targets("young woman with long black hair")["hairLong"]
    assert _targets("young woman with long black hair")["hairBlack"]
    assert _targets("woman in a red top and blue jeans")["upperBodyRed"]
    assert _targets("woman in a red top and blue jeans")["lowerBodyBlue"]


def test_parser_negation_and_specific_bags():
    t = _targets("man without a backpack")
    assert t["carryingBackpack"] is False
    q = parse_heads("woman carrying a plastic bag")
    assert [c.targets for c in q.constraints if c.targets[0][0].startswith("carrying")] == \
        [(("carryingPlasticBags", 1.0),)]
    assert _targets("man in a suit carrying a briefcase")["carryingSuitcase"]
    assert parse_heads("sleeveless top").constraints[-1].targets[0][0] == "upperBodyNoSleeve"


# ---- captions -----------------------------------------------------------------------------------------------------
def test_captions_assert_only_labels_the_person_has():
    labels = frozenset("upperBodyRed lowerBodyBlue lowerBodyJeans personalFemale hairLong hairBlack "
                       "carryingBackpack footwearWhite footwearSneakers personalLess30".split())
    rng = np.random.default_rng(0)
    for _ in range(50):
        cap = random_caption(labels, rng)
        assert cap.required <= labels and cap.text
    full = describe_person(labels, "sentence")
    assert "red" in full.text and "jeans" in full.text and "backpack" in full.text
    assert {describe_person(labels, s).required for s in EVAL_STYLES} == {full.required}


# ---- training -----------------------------------------------------------------------------------------------------
def test_sdm_is_lower_for_aligned_pairs():
    from reid_core.training.text import sdm_loss

    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    match = torch.eye(8)
    scale = torch.tensor(20.0)
    assert sdm_loss(x, x, match, scale) < sdm_loss(x, x[torch.randperm(8)], match, scale)


def test_training_steps_lower_the_loss(tiny_peta, feature_cache):
    from reid_core.textlearn.model import TextNet
    from reid_core.textlearn.peta import embed_peta, load_peta
    from reid_core.textlearn.vocab import HEADS
    from reid_core.training.text import LABEL_SPACE, TextTask, TextTrainOptions, build_vocabulary

    data = load_peta(tiny_peta)
    feats = embed_peta(data, "person-reidentification-retail-0287", feature_cache, log=None)
    vocab = build_vocabulary(data, data.persons, 0)
    torch.manual_seed(0)
    net = TextNet(replace(TINY_NET, n_heads_out=len(HEADS), vocab_size=len(vocab), n_labels=len(LABEL_SPACE),
                          dropout=0.0))
    task = TextTask(net, vocab, data, feats, np.arange(len(data.images)), TextTrainOptions(batch_size=16), seed=0)
    batch = task.batches(1, 0, 1)[0]
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    losses = []
    for _ in range(12):
        loss, _ = task.loss(net, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0], losses


def test_train_text_writes_a_loadable_model(tiny_model):
    from reid_core.textlearn.model import load_text_model

    assert tiny_model.train_persons == 5 and tiny_model.test_persons == 2  # 8 people: 60/10/30 by identity
    assert len(tiny_model.history) == 2 and Path(tiny_model.run_dir, "metrics.csv").is_file()
    model = load_text_model(tiny_model.model_path)
    assert model.embedder == "person-reidentification-retail-0287" and "heads" in model.fusion
    assert Path(tiny_model.model_path).parent.name != "weights"  # never the embedder folder itself


# ---- engine -------------------------------------------------------------------------------------------------------
def test_learned_engine_ranks_every_track(pets_store, tiny_model):
    from reid_core.text_search import search_text

    store, _ = pets_store
    n = len(store.tracks())
    res = search_text(store, "blonde woman in a skirt with white sneakers", top_k=100, engine="learned",
                      text_model=tiny_model.model_path)
    assert res.engine == "learned" and len(res.hits) == n
    assert len({h.track_id for h in res.hits}) == n
    scores = [h.score for h in res.hits]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert res.unknown_words == ()  # every word maps to a head
    assert any(label == "understood (learned heads)" for label, _ in res.summary())
    auto = search_text(store, "man in a black jacket", top_k=5, engine="auto", text_model=tiny_model.model_path)
    assert auto.engine == "attributes+learned" and len(auto.hits) == 5
    free = search_text(store, "zzqx flibber", top_k=3, engine="learned", text_model=tiny_model.model_path)
    assert len(free.hits) == 3  # nothing parsed: the encoder alone ranks


def test_no_trained_model_is_said_clearly(pets_store, tmp_path, monkeypatch):
    from reid_core.text_search import search_text

    store, _ = pets_store
    monkeypatch.setenv("REID_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match="reid train text"):
        search_text(store, "man in black", engine="learned", text_model="never-trained")
    res = search_text(store, "man in black", top_k=3, engine="auto", text_model="never-trained")
    assert res.engine == "attributes" and any("learned engine off" in n for n in res.notes)
