"""Training: losses, PK sampling, one tiny step of each objective, pseudo-labels, checkpoint resume, DDP, CLI.

Objectives are checked on fixed tiny batches (the loss must be finite and go down over a few steps); the real
store and models are used for pseudo-labels and for one end-to-end `reid adapt` step.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from reid_core.errors import InputError
from reid_core.training.data import PKSampler, TrainData, folder_samples
from reid_core.training.losses import batch_hard_triplet, identity_loss, info_nce
from reid_core.training.pseudo_labels import PseudoLabelConfig, build_pseudo_labels
from tests.integration.conftest import GT, PERSONS, ROOT, VIDEO, reid_cli

# ---------------------------------------------------------------- helpers


def _market_folder(root: Path, ids: int = 6, per_id: int = 4, cams: int = 2) -> Path:
    """A tiny Market-layout folder: each identity a distinct colour pattern, each image a noisy variant."""
    folder = root / "bounding_box_train"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for pid in range(1, ids + 1):
        top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        for j in range(per_id):
            img = np.zeros((64, 32, 3), np.uint8)
            img[:32], img[32:] = top, bottom
            img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"{pid:04d}_c{j % cams + 1}s1_{j:06d}_00.jpg"), img)
    return root


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    return _market_folder(tmp_path_factory.mktemp("market"))


def _fixed_batch(data: TrainData, transform, n: int | None = None):
    from reid_core.training.data import CropDataset

    torch.manual_seed(0)
    ds = CropDataset(data, transform)
    items = [ds[i] for i in range(n or len(ds))]
    return torch.stack([x for x, _, _ in items]), torch.tensor([y for _, y, _ in items])


# ---------------------------------------------------------------- losses


def test_batch_hard_triplet_picks_hardest_pairs():
    f = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.0, 3.5]])
    labels = torch.tensor([0, 0, 1, 1])
    # anchor 0: hardest positive 1.0, hardest negative 3.0 -> relu(1 - 3 + 0.3) = 0; anchor 2: pos 0.5, neg 3.0 ...
    assert batch_hard_triplet(f, labels, margin=0.3).item() == pytest.approx(0.0, abs=1e-6)
    loss = batch_hard_triplet(f, labels, margin=5.0).item()
    # per anchor (hardest positive - closest negative + margin): 1-3+5, 1-sqrt(10)+5, 0.5-3+5, 0.5-3.5+5
    expect = np.mean([3.0, 6 - np.sqrt(10), 2.5, 2.0])
    assert loss == pytest.approx(expect, rel=1e-5)


def test_triplet_negatives_mask_excludes_uncertain_pairs():
    f = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.2, 0.0], [5.0, 0.0], [5.1, 0.0]])
    labels = torch.tensor([0, 0, 1, 2, 2])
    # label 1 sits next to label 0 (a re-entry of the same person, say): masked out, it cannot be a negative.
    allowed = torch.ones(5, 5, dtype=torch.bool)
    allowed[:2, 2] = allowed[2, :2] = False
    with_mask = batch_hard_triplet(f, labels, margin=0.3, negatives=allowed).item()
    without = batch_hard_triplet(f, labels, margin=0.3).item()
    assert with_mask < without
    assert with_mask == pytest.approx(0.0, abs=1e-6)


def test_info_nce_and_identity_loss_values():
    q = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0]]), dim=1)
    k = q.clone()
    queue = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    expect = -np.log(np.exp(1 / 0.2) / (np.exp(1 / 0.2) + np.exp(0) + np.exp(-1 / 0.2)))
    assert info_nce(q, k, queue, 0.2).item() == pytest.approx(expect, rel=1e-5)
    # a queue entry of the query's own track is not a negative: excluding it leaves only the positive and [0, 1]
    excluded = info_nce(q, k, queue, 0.2, exclude=torch.tensor([[False, True]]))
    assert excluded.item() == pytest.approx(-np.log(np.exp(5) / (np.exp(5) + 1)), rel=1e-5)
    logits = torch.tensor([[10.0, 0.0]])
    assert identity_loss(logits, torch.tensor([0]), 0.0).item() < identity_loss(logits, torch.tensor([0]), 0.1).item()


# ---------------------------------------------------------------- sampling


def test_pk_sampler_batches_and_ranks():
    labels = np.repeat(np.arange(10), [3, 8, 20, 4, 4, 5, 6, 7, 2, 9])
    s = PKSampler(labels, p=4, k=4, seed=1)
    s.set_epoch(3)
    batches = s._global_batches()
    assert batches and all(len(b) == 16 for b in batches)
    for b in batches:
        counts = Counter(labels[b].tolist())
        assert len(counts) == 4 and set(counts.values()) == {4}
    again = PKSampler(labels, p=4, k=4, seed=1)
    again.set_epoch(3)
    assert again._global_batches() == batches  # same (seed, epoch), same batches: resume-safe
    ranks = [PKSampler(labels, 4, 4, 1, rank, 2) for rank in (0, 1)]
    for r in ranks:
        r.set_epoch(3)
    mine = [r._my_batches() for r in ranks]
    assert len(mine[0]) == len(mine[1]) and mine[0] != mine[1]
    assert sorted(map(tuple, mine[0] + mine[1])) == sorted(map(tuple, batches[: 2 * len(mine[0])]))


def test_pk_sampler_grows_k_for_few_identities():
    s = PKSampler(np.repeat(np.arange(3), 10), p=16, k=4)
    assert (s.p, s.batch_size) == (3, 3 * 16)  # keeps P*K near 64 with 3 identities, capped at 4K per identity
    with pytest.raises(InputError):
        PKSampler(np.zeros(5), p=4, k=2)


# ---------------------------------------------------------------- one tiny step of each objective


def _steps(task, n: int, batch_fn) -> list[float]:
    module = task.module()
    module.train()
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(n):
        loss, parts = task.loss(module, batch_fn())
        assert torch.isfinite(loss) and all(np.isfinite(v) for v in parts.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        task.after_step()
        losses.append(loss.item())
    return losses


def test_supervised_step_reduces_loss(market):
    from reid_core.models import build_network
    from reid_core.training.data import eval_transform
    from reid_core.training.supervised import SupervisedConfig, SupervisedTask

    data = folder_samples(market)
    assert data.num_classes == 6 and len(data.samples) == 24
    torch.manual_seed(0)
    task = SupervisedTask(build_network("osnet_x0_25"), data, SupervisedConfig(p=3, k=4))
    assert task.network.num_classes == 6
    images, labels = _fixed_batch(data, eval_transform(), 12)
    out = task.network.train()(images)
    assert out.logits.shape == (12, 6) and out.global_feat.shape == (12, 512)
    losses = _steps(task, 6, lambda: (images, labels, None))
    assert losses[-1] < losses[0]


def test_adaptation_step_with_sure_negatives(market):
    """The adaptation objective: pseudo-identities with only co-occurring pairs usable as triplet negatives."""
    from reid_core.models import build_network
    from reid_core.training.data import eval_transform
    from reid_core.training.supervised import SupervisedConfig, SupervisedTask

    base = folder_samples(market)
    known = np.zeros((6, 6), bool)
    known[0, 1:] = known[1:, 0] = True  # identity 0 co-occurred with everyone; the rest never met
    data = TrainData(base.samples, 6, base.origin, None, known)
    torch.manual_seed(0)
    task = SupervisedTask(build_network("osnet_x0_25"), data, SupervisedConfig(p=3, k=4))
    images, labels = _fixed_batch(data, eval_transform(), 12)
    losses = _steps(task, 6, lambda: (images, labels, None))
    assert losses[-1] < losses[0]


def test_moco_step_reduces_loss(market):
    from reid_core.models import build_network
    from reid_core.training.data import eval_transform
    from reid_core.training.moco import MoCoConfig, MoCoTask

    data = folder_samples(market, labelled=False)
    torch.manual_seed(0)
    task = MoCoTask(build_network("osnet_x0_25"), data, MoCoConfig(batch_size=8, queue_size=16))
    assert task.config.queue_size == 16
    images, _ = _fixed_batch(data, eval_transform(), 24)
    moco = task.module().train()
    with torch.no_grad():  # fill the queue with keys of other crops, then hold it fixed
        moco._enqueue(moco._keys(images[8:24]))
    assert int(moco.queue_filled) == 16
    moco._enqueue = lambda *args: None
    q, k = images[:8], images[:8].flip(3)  # two views: the crop and its mirror image
    losses = _steps(task, 6, lambda: ((q, k), None, None))
    assert losses[-1] < losses[0]
    assert task.export() is moco.encoder_q


# ---------------------------------------------------------------- pseudo-labels


def _track(video, tid, frames, centre, rng, noise=0.05, dim=16):
    f = centre + rng.normal(0, noise, (len(frames), dim))
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    return (video, "cam", tid, [f"{video}/{fr:08d}_{tid:02d}" for fr in frames], list(frames), f)


def _switched_track(tid, first, second, rng):
    f1 = _track("v", tid, range(70, 80), first, rng)[5]
    f2 = _track("v", tid, range(80, 90), second, rng)[5]
    return ("v", "cam", tid, [f"v/{fr:08d}_{tid:02d}" for fr in range(70, 90)], list(range(70, 90)),
            np.vstack([f1, f2]))


def test_pseudo_labels_split_merge_and_constraints():
    rng = np.random.default_rng(0)
    people = np.eye(16)[:4] * 1.0
    a, b, c, d = people
    tracks = [
        _track("v", 1, range(0, 20), a, rng),
        _track("v", 2, range(0, 20), b, rng),  # co-occurs with 1: a sure negative
        _track("v", 3, range(40, 60), a, rng),  # person a again, later: merged with track 1
        _switched_track(4, c, d, rng),  # switched from person c to d at frame 80: split there
        _track("v", 5, range(100, 103), b, rng),  # too short
    ]
    segments, labels, sure, report = build_pseudo_labels(tracks, PseudoLabelConfig(min_crops=8, min_segment=4))
    assert report.splits == 1 and report.short_dropped == 1
    by_track = defaultdict(set)
    for seg, lab in zip(segments, labels):
        by_track[seg.track].add(int(lab))
    assert by_track[1] == by_track[3]  # re-entry merged
    assert by_track[1] != by_track[2]
    assert len(by_track[4]) == 2  # the switched track became two identities
    l1, l2 = next(iter(by_track[1])), next(iter(by_track[2]))
    assert sure[l1, l2] and sure[l2, l1]
    assert report.identities == 4  # a, b, c, d


def test_pseudo_labels_never_merge_co_occurring_tracks():
    rng = np.random.default_rng(1)
    a = np.eye(16)[0]
    tracks = [_track("v", 1, range(0, 20), a, rng), _track("v", 2, range(10, 30), a, rng)]  # alike but together
    _, labels, _, report = build_pseudo_labels(tracks, PseudoLabelConfig(min_crops=8))
    assert labels[0] != labels[1] and report.merged == 0
    with pytest.raises(InputError):
        build_pseudo_labels(tracks[:1], PseudoLabelConfig(min_crops=8))


def test_pseudo_labels_on_real_tracks_are_pure(pets_store):
    """The project's own tracks of PETS frames 0-199 as pseudo-identities: compared with gt (never used to build
    them), each pseudo-identity is almost entirely one person."""
    from reid_core.evaluation import datasets as ds
    from reid_core.groundtruth import load_persons
    from reid_core.training.pseudo_labels import pseudo_label_data

    store, _ = pets_store
    data, report = pseudo_label_data(str(store.path))
    assert report.identities >= 5 and report.crops > 500
    gt, _ = ds.read_gt(GT)
    persons = load_persons(PERSONS)
    by_frame = defaultdict(list)
    for g in gt:
        by_frame[g.frame - 1].append(g)
    crops = {c.key: c for c in store.get_crops([s.source for s in data.samples], jpeg=False)}
    per_label = defaultdict(Counter)
    for s in data.samples:
        c = crops[s.source]
        m = max(by_frame[c.frame], key=lambda g: c.box.iou(g.box), default=None)
        if m is not None and c.box.iou(m.box) >= 0.5:
            per_label[s.label][persons[m.track]] += 1
    majority = sum(cnt.most_common(1)[0][1] for cnt in per_label.values())
    total = sum(sum(cnt.values()) for cnt in per_label.values())
    assert majority / total >= 0.95


# ---------------------------------------------------------------- loop, checkpoints, resume


class _Crash(Exception):
    pass


def _train(market: Path, run_dir: Path, epochs: int, crash_after: int = 0):
    """Train for `epochs`; with crash_after, die (like a killed process) once that many epochs are checkpointed."""
    from reid_core.models import build_network
    from reid_core.training.engine import TrainConfig, fit
    from reid_core.training.supervised import SupervisedConfig, SupervisedTask

    torch.manual_seed(0)
    task = SupervisedTask(build_network("osnet_x0_25"), folder_samples(market), SupervisedConfig(p=2, k=2))
    seen = []

    def evaluate(_network):  # runs after an epoch's steps, before its checkpoint
        seen.append(1)
        if crash_after and len(seen) > crash_after:
            raise _Crash
        return {}

    result = fit(task, TrainConfig(epochs=epochs, max_steps=2, lr=1e-3), run_dir, evaluate=evaluate,
                 progress=False, log=lambda _: None)
    return task.network, result


def test_checkpoint_resume_matches_uninterrupted_run(market, tmp_path):
    straight, _ = _train(market, tmp_path / "straight", epochs=3)
    with pytest.raises(_Crash):
        _train(market, tmp_path / "split", epochs=3, crash_after=2)
    state = torch.load(tmp_path / "split" / "last.pt", weights_only=True)  # plain tensors only
    assert state["epoch"] == 2
    resumed, second = _train(market, tmp_path / "split", epochs=3)
    assert second.resumed_from == 2 and second.epochs_run == 1
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), k
    rows = second.history
    assert [r["epoch"] for r in rows] == [1, 2, 3] and all(np.isfinite(r["loss"]) for r in rows)
    assert (tmp_path / "split" / "tb").is_dir()


def test_corrupt_checkpoint_is_a_clear_error(market, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable training checkpoint"):
        _train(market, run, epochs=1)


# ---------------------------------------------------------------- DDP and CLI


def _env(tmp_path: Path) -> dict:
    env = dict(os.environ)
    env.update(REID_WEIGHTS_DIR=str(tmp_path / "weights"), OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return env


def test_two_process_ddp_run(market, tmp_path):
    """torchrun, 2 CPU processes (gloo): supervised and MoCo (keys gathered and BN-shuffled across ranks)."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    for script, name, extra in (("finetune.py", "ddp-sup", ["--market", str(market), "-p", "2", "-k", "2"]),
                                ("moco.py", "ddp-moco", ["--market", str(market), "--batch-size", "4",
                                                         "--queue", "8"])):
        cmd = torchrun + [str(ROOT / "pretrain" / script), "--name", name, "--epochs", "2", "--max-steps", "2",
                          "--run-dir", str(tmp_path / name), "--json", *extra]
        proc = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = json.loads(proc.stdout[proc.stdout.index("{"):])  # rank 0 alone prints the summary
        assert out["epochs"] == 2 and len(out["history"]) == 2
        assert proc.stdout.count('"name"') == 1
        assert (tmp_path / "weights" / f"{name}.pt").is_file()
        steps = [r["step"] for r in out["history"]]
        assert steps == [2, 4]  # each rank ran its own 2 steps per epoch


def test_cli_adapt_then_use_by_name(pets_store, tmp_path):
    """`reid adapt` on the real store, then the model is used by name by `reid embed`, `reid train list` and the
    embedder (both backends)."""
    store, _ = pets_store
    env = _env(tmp_path)
    proc = subprocess.run(reid_cli() + ["adapt", "--store", str(store.path), "--name", "site-test", "--epochs", "1",
                                        "--max-steps", "1", "-p", "4", "-k", "2", "--moco-epochs", "1",
                                        "--run-dir", str(tmp_path / "run"), "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["objective"] == "adapt" and out["pseudo_labels"]["identities"] >= 5
    assert [s["objective"] for s in out["stages"]] == ["moco"]  # MoCo on the same crops first, then pseudo-labels
    for stage in ("moco", "adapt"):
        assert (tmp_path / "run" / stage / "metrics.csv").is_file()
    listed = json.loads(subprocess.run(reid_cli() + ["train", "list", "--json"], env=env, capture_output=True,
                                       text=True, check=True).stdout)
    assert [r["name"] for r in listed] == ["site-test"] and listed[0]["objective"] == "adapt"
    crops = store.get_crops(store.all_crop_keys()[:4])
    from reid_core.crops import model_inputs_from_jpegs

    np.save(tmp_path / "crops.npy", model_inputs_from_jpegs([c.jpeg for c in crops]))
    done = subprocess.run(reid_cli() + ["embed", "--in", str(tmp_path / "crops.npy"), "--out",
                                        str(tmp_path / "f.npy"), "--model", "site-test", "--json"],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    feats = np.load(tmp_path / "f.npy")
    assert feats.shape == (4, 512) and np.allclose(np.linalg.norm(feats, axis=1), 1, atol=1e-4)

    # REID_EMBEDDER makes it the default of ingest (and of the app, which uses the same settings)
    env["REID_EMBEDDER"] = "site-test"
    new_store = tmp_path / "site-store"
    done = subprocess.run(reid_cli() + ["ingest", str(VIDEO), "--to-frame", "3", "--store", str(new_store),
                                        "--json"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    from reid_core.store import Store

    (run,) = Store(new_store).runs()
    assert run.settings["embedder"] == "site-test" and run.crops > 0
    info = json.loads(subprocess.run(reid_cli() + ["info", "--store", str(new_store), "--json"], env=env,
                                     capture_output=True, text=True, check=True).stdout)
    assert info["models_in_use"]["embedder"] == "site-test" and "site-test" in info["trained_models"]


def test_cli_training_errors_are_clear(tmp_path):
    env = _env(tmp_path)
    bad = subprocess.run(reid_cli() + ["train", "supervised", "--name", "x", "--market", str(tmp_path / "nope")],
                         env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "is not a folder" in bad.stderr
    taken = subprocess.run(reid_cli() + ["train", "moco", "--name", "osnet_x0_25_msmt17", "--folder", str(tmp_path)],
                           env=env, capture_output=True, text=True)
    assert taken.returncode == 2 and "taken" in taken.stderr


def test_store_keeps_one_embedder(store_copy):
    """A store ingested with one embedder refuses another's features (their cosines would be meaningless)."""
    from dataclasses import replace

    from reid_core.errors import StoreError
    from reid_core.ingest import ingest
    from reid_core.settings import Settings

    default = Settings.from_env().ingest
    other = replace(default, embedder="osnet_x0_25_market1501")
    before = store_copy.dump()
    with pytest.raises(StoreError, match=f"holds features of {default.embedder}"):
        ingest(VIDEO, store_copy, from_frame=300, to_frame=310, settings=other)
    assert store_copy.dump() == before
