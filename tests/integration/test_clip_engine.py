"""The CLIP engine on a tiny randomly initialised open_clip model built here (no CLIP weights exist offline):
loading every supported checkpoint format from a local file, shapes, ranking plumbing, clear errors."""
import json
import subprocess
import warnings

import numpy as np
import pytest
import torch

from reid_core.clip_engine import NO_CHECKPOINT_HELP, ClipEngine, load_clip
from reid_core.errors import WeightsError
from reid_core.text_search import TextSearcher
from tests.integration.conftest import reid_cli

EMBED = 32
TINY_CFG = {"embed_dim": EMBED,
            "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1}}


def _tiny(quick_gelu: bool, seed: int = 0):
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(seed)
    return CLIP(EMBED, CLIPVisionCfg(**TINY_CFG["vision_cfg"]), CLIPTextCfg(**TINY_CFG["text_cfg"]),
                quick_gelu=quick_gelu).eval()


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """The tiny model saved in each format the engine reads, plus its reference module."""
    d = tmp_path_factory.mktemp("clip")
    model = _tiny(quick_gelu=True)
    paths = {"state-dict": d / "tiny_openai_layout.pt", "training-checkpoint": d / "epoch_1.pt",
             "openai-torchscript": d / "tiny_jit.pt"}
    torch.save(model.state_dict(), paths["state-dict"])
    torch.save({"epoch": 1, "state_dict": {"module." + k: v for k, v in model.state_dict().items()}},
               paths["training-checkpoint"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torch.jit.script is deprecated": OpenAI still ships TorchScript
        torch.jit.script(model).save(str(paths["openai-torchscript"]))
    # An open_clip-format (GELU) checkpoint of a named architecture, as safetensors.
    import open_clip
    from safetensors.torch import save_file

    (d / "cfg").mkdir()
    (d / "cfg" / "tiny-test-clip.json").write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(d / "cfg")
    gelu = _tiny(quick_gelu=False, seed=1)
    paths["safetensors"] = d / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in gelu.state_dict().items()}, str(paths["safetensors"]))
    return paths, model, gelu


def _reference_text(model, engine, texts):
    with torch.inference_mode():
        f = model.encode_text(engine.tokenizer(texts)).numpy()
    return f / np.linalg.norm(f, axis=1, keepdims=True)


@pytest.mark.parametrize("fmt", ["state-dict", "training-checkpoint", "openai-torchscript"])
def test_loads_openai_layout_formats(ckpts, fmt):
    paths, model, _ = ckpts
    engine = ClipEngine(paths[fmt])
    assert engine.info.format == fmt and engine.info.model_name == "inferred"
    assert (engine.info.embed_dim, engine.info.image_size, engine.info.context_length) == (EMBED, 32, 77)
    texts = ["a man in a red jacket", "a woman with a bag"]
    t = engine.encode_text(texts)
    assert t.shape == (2, EMBED) and t.dtype == np.float32
    assert np.allclose(np.linalg.norm(t, axis=1), 1, atol=1e-5)
    assert np.allclose(t, _reference_text(model, engine, texts), atol=1e-4)  # the weights really were loaded


def test_loads_open_clip_safetensors_with_model_name(ckpts):
    paths, _, gelu = ckpts
    engine = ClipEngine(paths["safetensors"], "tiny-test-clip")
    assert engine.info.format == "safetensors" and engine.info.model_name == "tiny-test-clip"
    assert np.allclose(engine.encode_text(["a person"]), _reference_text(gelu, engine, ["a person"]), atol=1e-4)


def test_image_shapes_and_padding(ckpts):
    engine = ClipEngine(ckpts[0]["state-dict"])
    tall = np.full((120, 40, 3), 255, np.uint8)
    x = engine.preprocess([tall, tall[:60]])
    assert x.shape == (2, 3, 32, 32) and x.dtype == np.float32
    # padded, not cropped: the sides are CLIP's mean colour (0 after normalisation), the middle is the crop
    assert np.abs(x[0, :, 16, 0]).max() < 0.05 and x[0, :, 16, 16].min() > 1.0
    feats = engine.encode_images([tall, tall[:60], tall[:, :20]], batch_size=2)
    assert feats.shape == (3, EMBED) and np.allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-5)
    assert engine.encode_images([]).shape == (0, EMBED)


def test_rank_orders_by_cosine_against_a_direct_computation(ckpts):
    paths, model, _ = ckpts
    engine = ClipEngine(paths["state-dict"])
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (int(rng.integers(40, 120)), 30, 3), dtype=np.uint8) for _ in range(7)]
    order, sims = engine.rank("a person in a green coat", crops)
    with torch.inference_mode():
        img = model.encode_image(torch.from_numpy(engine.preprocess(crops))).numpy()
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    expected = img @ _reference_text(model, engine, ["a person in a green coat"])[0]
    assert np.allclose(sims, expected, atol=1e-4)
    assert list(order) == list(np.argsort(-expected, kind="stable"))


def test_missing_checkpoint_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(WeightsError, match="does not exist") as e:
        ClipEngine(tmp_path / "ViT-B-32.pt")
    assert "none ships" in str(e.value)
    monkeypatch.delenv("REID_CLIP_CHECKPOINT", raising=False)
    with pytest.raises(WeightsError, match="needs a CLIP checkpoint"):
        load_clip()


def test_empty_folder_and_garbage_checkpoints(tmp_path, ckpts):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(WeightsError, match="empty"):
        ClipEngine(empty)
    with pytest.raises(WeightsError, match="folder"):
        ClipEngine(tmp_path)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(WeightsError, match="not a readable CLIP checkpoint"):
        ClipEngine(garbage)
    truncated = tmp_path / "truncated.pt"
    data = ckpts[0]["state-dict"].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="not a readable CLIP checkpoint"):
        ClipEngine(truncated)
    bad_st = tmp_path / "bad.safetensors"
    bad_st.write_bytes(b"not really safetensors")
    with pytest.raises(WeightsError, match="safetensors"):
        ClipEngine(bad_st)


def test_tensors_that_are_not_clip(tmp_path, ckpts):
    other = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(8, 3, 3, 3), "fc.weight": torch.zeros(10, 8)}, other)
    with pytest.raises(WeightsError, match="not a CLIP model"):
        ClipEngine(other)
    with pytest.raises(WeightsError, match="unknown open_clip model name"):
        ClipEngine(ckpts[0]["state-dict"], "no-such-model")
    with pytest.raises(WeightsError, match="does not fit"):
        ClipEngine(ckpts[0]["state-dict"], "RN50")


def test_load_clip_caches_per_file(ckpts, monkeypatch):
    monkeypatch.setenv("REID_CLIP_CHECKPOINT", str(ckpts[0]["state-dict"]))
    assert load_clip() is load_clip()


# ---- the engine inside text search, on the real PETS store -----------------------------------------------------------
def test_clip_engine_ranks_tracks(pets_store, ckpts):
    store, _ = pets_store
    engine = ClipEngine(ckpts[0]["state-dict"])
    searcher = TextSearcher(store, engine)
    res = searcher.search("a man in a dark jacket", top_k=100, engine="clip")
    tracks = store.tracks()
    assert res.engine == "clip" and len(res.hits) == len(tracks) and res.unknown_words == ()
    assert len({h.track_id for h in res.hits}) == len(tracks)
    scores = [h.score for h in res.hits]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
    assert all(h.caption for h in res.hits)  # captions come from attributes whichever engine ranks
    # crop features were cached under this checkpoint's id
    sample = res.hits[0].crop_key
    assert store.get_annotations(engine.cache_kind, [sample])

    # Plumbing: make the "text" embedding equal one track's mean crop embedding; that track must come first.
    views = searcher.views()
    searcher.embed(views)
    target = views[len(views) // 2]
    engine.encode_text = lambda texts: target.clip_feature[None, :]
    res = searcher.search("anything", top_k=3, engine="clip")
    assert res.hits[0].track_id == target.track.track_id and res.hits[0].score == pytest.approx(1.0, abs=1e-3)
    # the hit's frame and box are those of the track's most typical crop
    rep = target.keys[target.clip_representative]
    i = target.track.keys.index(rep)
    assert (res.hits[0].frame, res.hits[0].box) == (target.track.frames[i], target.track.boxes[i])


def test_auto_combines_both_engines(pets_store, ckpts):
    store, _ = pets_store
    searcher = TextSearcher(store, ClipEngine(ckpts[0]["state-dict"]))
    res = searcher.search("woman in a light blue jacket with a bag", top_k=100, engine="auto")
    assert res.engine == "attributes+clip"
    cos = np.array([h.clip_cosine for h in res.hits])
    attr = np.array([h.attribute_score for h in res.hits])
    expected = 0.5 * attr + 0.5 * (cos - cos.min()) / (cos.max() - cos.min())
    assert np.allclose([h.score for h in res.hits], expected, atol=1e-9)
    # a query the attribute parser cannot read is left to CLIP alone
    res = searcher.search("zorblax", top_k=100, engine="auto")
    assert res.unknown_words == ("zorblax",) and max(h.score for h in res.hits) == pytest.approx(1.0)


def test_cli_clip_engine(pets_store, ckpts, cli_env):
    store, _ = pets_store
    out = subprocess.run(reid_cli() + ["search-text", "man in black", "--engine", "clip", "--clip-checkpoint",
                                       str(ckpts[0]["state-dict"]), "--store", str(store.path), "--json",
                                       "--top-k", "3"], env=cli_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["engine"] == "clip" and len(res["results"]) == 3
    missing = subprocess.run(reid_cli() + ["search-text", "man in black", "--engine", "clip", "--store",
                                           str(store.path), "--json"], env={**cli_env, "REID_CLIP_CHECKPOINT": ""},
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2
    assert json.loads(missing.stdout.splitlines()[-1])["type"] == "WeightsError"
    assert NO_CHECKPOINT_HELP.split(".")[0] in missing.stderr
