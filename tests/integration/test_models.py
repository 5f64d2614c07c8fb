"""reid_core.models: network contract, checkpoint loaders, trained-model files and the embedder hook (CPU, fast)."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from reid_core.errors import InputError, WeightsError
from reid_core.models import (
    BoTResNet50,
    NetOutput,
    build_network,
    find_trained,
    list_trained,
    load_fastreid_checkpoint,
    load_luperson_moco,
    load_model,
    load_torchreid_osnet,
    read_checkpoint,
    save_model,
    trained_path,
    validate_name,
)

SHARED_WEIGHTS = Path(__file__).resolve().parents[3] / "shared" / "weights"
SMALL = (3, 64, 32)  # ResNet-50 at 256x128 is slow on two cores; the contract does not depend on the size


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _randomise(net: torch.nn.Module) -> None:
    """Non-default BN statistics and GeM p, so a load that skipped them could not reproduce the outputs."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
        if hasattr(net, "pool") and hasattr(net.pool, "p"):
            net.pool.p.fill_(2.5)


@pytest.fixture(scope="module")
def plain_bot() -> BoTResNet50:
    """One untouched network for tests that only read it (building a ResNet-50 costs ~0.3 s)."""
    return build_network("bot_r50")


def _bot(num_classes: int = 0, **options) -> BoTResNet50:
    net = build_network("bot_r50", num_classes, **options)
    assert isinstance(net, BoTResNet50)
    return net


# ---------------------------------------------------------------- network contract


@pytest.mark.parametrize("arch,dim", [("osnet_x0_25", 512), ("bot_r50", 2048)])
def test_train_and_eval_outputs(arch, dim):
    net = build_network(arch, num_classes=7)
    assert net.arch == arch and net.dim == dim and net.num_classes == 7
    x = torch.randn(4, *SMALL)
    net.train()
    out = net(x)
    assert isinstance(out, NetOutput)
    assert out.global_feat.shape == out.bn_feat.shape == (4, dim)
    assert out.logits.shape == (4, 7)
    net.eval()
    with torch.no_grad():
        emb = net(x)
    assert isinstance(emb, torch.Tensor) and emb.shape == (4, dim)
    assert not torch.allclose(emb.norm(dim=1), torch.ones(4))  # not L2-normalised: the embedder does that

    net.reset_classifier(0)
    assert net.classifier is None and net.num_classes == 0
    net.train()
    assert net(x).logits is None
    net.reset_classifier(3)
    assert net.classifier.bias is None and net.classifier.weight.shape == (3, dim)
    assert 0.0005 < float(net.classifier.weight.detach().std()) < 0.002


def test_bot_r50_structure():
    net = _bot(5)
    assert net.backbone.layer4[0].conv2.stride == (1, 1) and net.backbone.layer4[0].downsample[0].stride == (1, 1)
    assert float(net.pool.p.detach()) == 3.0 and net.pool.p.requires_grad
    assert not net.bnneck.bias.requires_grad and float(net.bnneck.bias.abs().sum()) == 0
    assert net.classifier.bias is None
    x = torch.randn(2, *SMALL)
    assert net.feature_map(x).shape[-2:] == (4, 2)  # 64x32 / 16: last stride 1
    net.eval()
    with torch.no_grad():
        assert torch.allclose(net(x), net.bnneck(net.pool(net.feature_map(x)).flatten(1)))
    assert "pool.p" not in _bot(0, pooling="avg").state_dict()
    with pytest.raises(InputError, match="pooling"):
        _bot(0, pooling="max")
    with pytest.raises(InputError, match="architecture"):
        build_network("resnet18")


def test_models_package_stays_below_embedding_and_training():
    forbidden = ("reid_core.training", "reid_core.embedding", "reid_core.ingest", "reid_core.store",
                 "reid_core.matching")
    root = Path(__file__).resolve().parents[2] / "reid_core" / "models"
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.startswith(forbidden)], (path.name, names)


def test_input_statistics_match_the_embedder():
    from reid_core.embedding import IMAGENET_MEAN, IMAGENET_STD
    from reid_core.models import INPUT_MEAN, INPUT_STD

    assert np.allclose(INPUT_MEAN, IMAGENET_MEAN) and np.allclose(INPUT_STD, IMAGENET_STD)


# ---------------------------------------------------------------- OSNet = torchreid


def test_osnet_wrapper_equals_torchreid_and_loads_its_files_strictly():
    from reid_core.embedding import build_torch_osnet

    state = torch.load(SHARED_WEIGHTS / "osnet_x0_25_msmt17.pth", map_location="cpu", weights_only=True)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    net = build_network("osnet_x0_25", num_classes=1041)
    net.load_state_dict(state, strict=True)  # exactly torchreid's keys, classifier included
    headless = build_network("osnet_x0_25")
    headless.load_state_dict({k: v for k, v in state.items() if not k.startswith("classifier.")}, strict=True)

    ref = build_torch_osnet("osnet_x0_25_msmt17")
    x = torch.randn(3, 3, 256, 128)
    with torch.no_grad():
        expected = ref(x)
        assert torch.allclose(net.eval()(x), expected, atol=1e-5)
        assert torch.allclose(headless.eval()(x), expected, atol=1e-5)

    market = torch.load(SHARED_WEIGHTS / "osnet_x0_25_market1501.pth", map_location="cpu", weights_only=True)
    build_network("osnet_x0_25", 751).load_state_dict({k.removeprefix("module."): v for k, v in market.items()})

    report = load_torchreid_osnet(SHARED_WEIGHTS / "osnet_x0_25_market1501.pth", build_network("osnet_x0_25", 10))
    assert {k for k, _ in report.ignored} == {"classifier.weight", "classifier.bias"}
    assert report.missing == ["classifier.weight", "classifier.bias"]  # the 10-class head keeps its initialisation


# ---------------------------------------------------------------- FastReID


def _as_fastreid(net: BoTResNet50, classifier_key: str = "heads.weight") -> dict:
    state = {}
    for k, v in net.state_dict().items():
        if k.startswith("backbone."):
            state[k] = v.clone()
        elif k == "pool.p":
            state["heads.pool_layer.p"] = v.clone()
        elif k.startswith("bnneck."):
            state["heads.bottleneck.0." + k.removeprefix("bnneck.")] = v.clone()
        elif k == "classifier.weight":
            state[classifier_key] = v.clone()
    state["pixel_mean"] = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    state["pixel_std"] = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    return {"model": state, "optimizer": {"state": {}, "param_groups": []}, "iteration": 1000}


def test_fastreid_round_trip(tmp_path):
    src = _bot(6, stem_pool="fastreid")
    _randomise(src)
    path = tmp_path / "market_bot_R50.pth"
    torch.save(_as_fastreid(src), path)

    dst = _bot(6, pooling="avg")  # the loader takes pooling and stem pool from the checkpoint / FastReID
    report = load_fastreid_checkpoint(path, dst)
    assert dst.pooling == "gem" and dst.stem_pool == "fastreid"
    assert ("heads.pool_layer.p", "pool.p") in report.mapped
    assert ("heads.bottleneck.0.running_var", "bnneck.running_var") in report.mapped
    assert ("heads.weight", "classifier.weight") in report.mapped
    assert {k for k, _ in report.ignored} == {"pixel_mean", "pixel_std"}
    assert report.missing == []
    assert not any("pixel_" in n for n in report.notes)
    x = torch.randn(3, *SMALL)
    with torch.no_grad():
        assert torch.equal(src.eval()(x), dst.eval()(x))
    summary = report.summary()
    assert "mapped heads.bottleneck.0.* -> bnneck.* (5)" in summary and "mapped backbone.* -> backbone.*" in summary


def test_fastreid_avg_pool_old_head_names_and_other_classes():
    src = _bot(4, pooling="avg", stem_pool="fastreid")
    _randomise(src)
    ckpt = _as_fastreid(src, classifier_key="heads.classifier.weight")
    ckpt["model"] = {("heads.bnneck." + k.removeprefix("heads.bottleneck.0.")) if k.startswith("heads.bottleneck.0.")
                     else "module." + k: v for k, v in ckpt["model"].items()}  # DataParallel prefix, old head
    ckpt["model"]["module.pixel_mean"] = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    dst = _bot(9)  # a different number of identities: the classifier is left alone
    report = load_fastreid_checkpoint(ckpt, dst)
    assert dst.pooling == "avg"
    assert any("average" in n for n in report.notes) and any("pixel_mean" in n for n in report.notes)
    assert [k for k, _ in report.ignored if "classifier" in k] == ["heads.classifier.weight"]
    assert report.missing == ["classifier.weight"]
    x = torch.randn(2, *SMALL)
    with torch.no_grad():
        assert torch.equal(src.eval()(x), dst.eval()(x))


@pytest.mark.parametrize("extra,kind", [
    ("backbone.layer1.0.bn1.IN.weight", "IBN"),
    ("backbone.layer2.0.se.fc.0.weight", "squeeze-excitation"),
    ("backbone.NL_2.0.g.weight", "non-local"),
    ("backbone.layer3.6.conv1.weight", "deeper ResNet"),
    ("b1.0.weight", "MGN"),
])
def test_fastreid_refuses_what_r50_cannot_hold(extra, kind, plain_bot):
    ckpt = _as_fastreid(plain_bot)
    ckpt["model"][extra] = torch.zeros(4)
    with pytest.raises(WeightsError) as e:
        load_fastreid_checkpoint(ckpt, plain_bot)  # refused before the network is touched
    assert kind in str(e.value) and extra in str(e.value)


def test_fastreid_refuses_reduction_head_and_other_networks(plain_bot):
    ckpt = _as_fastreid(plain_bot)
    ckpt["model"]["heads.bottleneck.0.weight"] = torch.zeros(512, 2048, 1, 1)
    with pytest.raises(WeightsError, match="reduction conv"):
        load_fastreid_checkpoint(ckpt, plain_bot)
    with pytest.raises(InputError, match="bot_r50"):
        load_fastreid_checkpoint(ckpt, build_network("osnet_x0_25"))


# ---------------------------------------------------------------- LUPerson MoCo / torchvision


def test_luperson_moco_checkpoint_and_plain_torchvision():
    from torchvision.models import resnet50

    tv = resnet50(weights=None)
    _randomise(tv)
    plain = tv.state_dict()
    moco = {"state_dict": {**{f"module.encoder_q.{k}": v for k, v in plain.items() if not k.startswith("fc.")},
                           "module.encoder_q.fc.0.weight": torch.zeros(2048, 2048),
                           "module.encoder_q.fc.2.weight": torch.zeros(128, 2048),
                           "module.encoder_k.conv1.weight": torch.zeros(64, 3, 7, 7),
                           "module.queue": torch.zeros(128, 65536 // 1024),
                           "module.queue_ptr": torch.zeros(1, dtype=torch.long)},
            "epoch": 200, "arch": "resnet50"}
    for ckpt in (moco, plain):
        net = _bot(3)
        before_neck = net.bnneck.weight.clone()
        report = load_luperson_moco(ckpt, net)
        own = net.state_dict()
        assert all(torch.equal(own["backbone." + k], v) for k, v in plain.items() if not k.startswith("fc."))
        assert torch.equal(net.bnneck.weight, before_neck)
        assert sorted(report.missing) == sorted(k for k in own if not k.startswith("backbone."))
        reasons = dict(report.ignored)
        dropped_heads = [k for k, why in reasons.items() if "projection head" in why]  # keys without "module."
        assert dropped_heads and all(k.removeprefix("encoder_q.").startswith("fc.") for k in dropped_heads)
        if ckpt is moco:
            assert "MoCo momentum (key) encoder" in reasons.values()

    with pytest.raises(WeightsError, match="IBN"):
        load_luperson_moco({**plain, "layer1.0.bn1.IN.weight": torch.zeros(32)}, net)
    with pytest.raises(WeightsError, match="lacks"):
        load_luperson_moco({k: v for k, v in plain.items() if not k.startswith("layer4.")}, net)


# ---------------------------------------------------------------- trained-model files


def test_save_load_round_trip_weights_only(tmp_path):
    src = _bot(5, pooling="avg", stem_pool="fastreid")
    _randomise(src)
    meta = {"dataset": "market1501", "epochs": 3, "mAP": 0.5, "ok": True, "hist": [1, 2.5], "cfg": {"lr": 3e-4}}
    path = save_model(tmp_path / "m.pt", src, meta)
    assert not [p for p in tmp_path.iterdir() if p.name != "m.pt"]  # the temporary file is gone

    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["format"] == "reid-studio-model/1" and raw["arch"] == "bot_r50" and raw["dim"] == 2048
    assert raw["num_classes"] == 5 and raw["options"] == {"pooling": "avg", "stem_pool": "fastreid"}

    net, got = load_model(path)
    assert got == meta and not net.training and net.num_classes == 5 and net.stem_pool == "fastreid"
    x = torch.randn(2, *SMALL)
    with torch.no_grad():
        assert torch.equal(net(x), src.eval()(x))

    with pytest.raises(InputError, match="meta"):
        save_model(tmp_path / "bad.pt", src, {"x": np.float32(1)})


def test_load_model_errors(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_model(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file at all")
    with pytest.raises(WeightsError, match="cannot be read"):
        load_model(tmp_path / "junk.pt")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(WeightsError, match="not a reid-studio model"):
        load_model(tmp_path / "foreign.pt")
    torch.save({"model": {}, "metric": np.float64(0.5)}, tmp_path / "numpy.pt")
    with pytest.raises(WeightsError, match=r"numpy\S*scalar\).*not a reid-studio"):
        load_model(tmp_path / "numpy.pt")
    with pytest.raises(WeightsError, match="trusted=True"):
        read_checkpoint(tmp_path / "numpy.pt")
    assert read_checkpoint(tmp_path / "numpy.pt", trusted=True)[1]["metric"] == 0.5
    net = build_network("osnet_x0_25", 3)
    save_model(tmp_path / "cut.pt", net, {})
    data = (tmp_path / "cut.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="cannot be read"):
        load_model(tmp_path / "cut.pt")


def test_names_and_lookup(tmp_path, monkeypatch):
    from reid_core.models import default_output_dir

    monkeypatch.setenv("REID_WEIGHTS_DIR", str(tmp_path))
    assert default_output_dir() == tmp_path
    for bad in ("", "../x", "a/b", ".hidden", "x.pt", "a b", "osnet_x0_25_msmt17"):
        with pytest.raises(InputError):
            validate_name(bad)
    assert validate_name("market-bot_r50.v2") == "market-bot_r50.v2"
    with pytest.raises(WeightsError) as e:
        find_trained("my-model")
    assert "my-model.pt" in str(e.value) and str(tmp_path) in str(e.value)

    path = save_model(trained_path("my-model"), build_network("osnet_x0_25"), {})
    assert path == tmp_path / "my-model.pt"
    assert find_trained("my-model") == path
    assert list_trained()["my-model"] == path
    with pytest.raises(WeightsError):
        find_trained("../my-model")
    monkeypatch.delenv("REID_WEIGHTS_DIR")
    assert default_output_dir().name == "weights"


# ---------------------------------------------------------------- embedder and evaluation hooks


def _pets_crops() -> np.ndarray:
    """The annotated people of two PETS09-S2L1 frames (white noise would exaggerate FP32 backend differences)."""
    from reid_core.crops import cut, to_model_input
    from reid_core.groundtruth import load_mot_gt
    from reid_core.video import read_frame
    from tests.integration.conftest import GT, VIDEO

    gt = load_mot_gt(GT)
    crops = []
    for index in (0, 40):
        frame = read_frame(VIDEO, index)
        crops += [to_model_input(cut(frame, box)) for _, box in gt[index]]
    return np.stack(crops)


def test_load_embedder_on_a_trained_osnet(tmp_path, monkeypatch):
    from reid_core import offline
    from reid_core.embedding import TRAINED_SPEC, TrainedOpenVINOEmbedder, known_embedders, load_embedder
    from reid_core.evaluation.runner import EvalSettings, _model_id

    monkeypatch.setenv("REID_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setattr(offline, "_CACHE", tmp_path / "cache")  # the converted IR goes to a throwaway cache
    net = build_network("osnet_x0_25")
    load_torchreid_osnet(SHARED_WEIGHTS / "osnet_x0_25_msmt17.pth", net)
    save_model(trained_path("test-osnet"), net, {"note": "msmt17 weights re-saved"})

    assert "test-osnet" in known_embedders()
    crops = _pets_crops()
    pt = load_embedder("test-osnet", "torch")
    ov = load_embedder("test-osnet", "openvino")
    assert pt.dim == ov.dim == 512
    a, b = pt.embed(crops), ov.embed(crops)
    assert a.shape == b.shape == (len(crops), 512) and len(crops) >= 4
    # The default runs bf16 where the CPU has it (tests/test_embedding.py); in f32 the conversion itself is checked.
    assert (a * b).sum(1).min() > 0.995
    exact = TrainedOpenVINOEmbedder("test-osnet", TRAINED_SPEC, False, precision="f32").embed(crops)
    assert (a * exact).sum(1).min() > 0.999
    assert list((tmp_path / "cache" / "openvino").glob("trained-test-osnet-*.xml"))
    ref = load_embedder("osnet_x0_25_msmt17", "torch").embed(crops)
    assert (a * ref).sum(1).min() > 0.9999  # the same weights through the new path

    settings = EvalSettings(models=("test-osnet",), backend="torch")
    settings.check()
    first = _model_id("test-osnet", "torch")
    save_model(trained_path("test-osnet"), build_network("osnet_x0_25"), {})  # "retrained"
    assert _model_id("test-osnet", "torch") != first
    assert load_embedder("test-osnet", "torch") is not pt  # a new file is a new embedder
    with pytest.raises(InputError, match="unknown model"):
        EvalSettings(models=("no-such-model",)).check()
    with pytest.raises(WeightsError, match="no-such-model.pt"):
        load_embedder("no-such-model")
