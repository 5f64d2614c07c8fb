"""The spatial-temporal model's pieces on synthetic transitions (histogram, Parzen, logistic, joint scale, label-free
learning), and the wall-clock metadata they rest on (ISO-8601 starts, MP4 creation time). No store, no models."""
import struct

import numpy as np
import pytest

from reid_core import clock
from reid_core.errors import InputError, StoreError
from reid_core.matching import Gallery
from reid_core.spacetime import (
    Span,
    StParams,
    Transition,
    inverse_logistic,
    joint,
    learn,
    learn_unlabelled,
    load_model,
    logistic,
    pair_gap,
    parzen_histogram,
)

PARAMS = StParams(bin_s=1.0, sigma_s=1.0, max_gap_s=100.0, l0=1.0, g0=5.0, l1=1.0, g1=20.0)


def synthetic(n=40, seed=0):
    """cam1 -> cam2 transitions around 10 s (sd 1 s)."""
    rng = np.random.default_rng(seed)
    return [Transition("cam1", "cam2", float(10 + rng.normal())) for _ in range(n)]


def test_logistic_and_its_inverse():
    assert logistic(0.0, 1.0, 5.0) == pytest.approx(0.5)
    assert logistic(1.0, 1.0, 5.0) == pytest.approx(1 / (1 + np.exp(-5)))
    xs = np.linspace(-1, 1, 9)
    assert np.allclose(inverse_logistic(logistic(xs, 2.0, 3.0), 2.0, 3.0), xs)
    assert joint(0.8, 0.1, PARAMS) == pytest.approx(logistic(0.8, 1, 5) * logistic(0.1, 1, 20))


def test_parzen_histogram_sums_to_one_and_spreads():
    raw = parzen_histogram([10.2] * 5, StParams(bin_s=1.0, sigma_s=0.0, max_gap_s=100.0))
    assert raw.sum() == pytest.approx(1.0) and raw[10] == pytest.approx(1.0)
    smooth = parzen_histogram([10.2] * 5, PARAMS)
    assert smooth.sum() == pytest.approx(1.0) and smooth.argmax() == 10
    assert 0 < smooth[8] < smooth[9] < smooth[10] and smooth[11] == pytest.approx(smooth[9])
    assert not parzen_histogram([], PARAMS).any()
    assert not parzen_histogram([500.0], PARAMS).any()  # past the model's longest gap


def test_learned_transitions_give_p_st():
    model = learn(synthetic(), PARAMS)
    assert model.counts == {("cam1", "cam2"): 40} and model.source == "labelled"
    assert model.p_st("cam1", "cam2", 10.0) > 5 * model.p_st("cam1", "cam2", 3.0)
    assert model.p_st("cam2", "cam1", -10.0) == model.p_st("cam1", "cam2", 10.0)  # direction-free in use
    assert model.p_st("cam2", "cam1", 10.0) == 0.0  # nobody was seen going that way
    assert model.p_st("cam1", "cam2", 1e6) == 0.0
    assert 0 < model.p_ref <= model.hists[("cam1", "cam2")].max()
    assert learn([Transition("a", "a", 3.0)], PARAMS).empty  # same camera: no transition


def test_pair_gap():
    assert pair_gap(Span("a", 0, 2), Span("b", 5, 9)) == ("a", "b", 3)
    assert pair_gap(Span("b", 5, 9), Span("a", 0, 2)) == ("a", "b", 3)
    assert pair_gap(Span("a", 0, 6), Span("b", 5, 9)) == ("a", "b", 0.0)  # at once in two views
    assert pair_gap(Span("a", None, None), Span("b", 5, 9)) is None


def test_adjust_keeps_the_scale_and_explains():
    model = learn(synthetic(), PARAMS)
    likely = model.factor(Span("cam1", 0, 1), Span("cam2", 11, 12))
    odd = model.factor(Span("cam1", 0, 1), Span("cam2", 4, 5))
    never = model.factor(Span("cam2", 0, 1), Span("cam3", 11, 12))
    assert likely.text.startswith("cam1 -> cam2 in 10.0 s: likely (p=")
    assert "unlikely" in odd.text and "never seen cam2 -> cam3" in never.text
    assert model.adjust(0.7, likely) > 0.7 - 0.02 and model.adjust(0.7, odd) < 0.7 - 0.05
    assert model.adjust(0.7, odd) == pytest.approx(model.adjust(0.7, never), abs=0.01)
    at_ref = model.factor(Span("cam1", 0, 0), Span("cam2", 10, 10))
    at_ref = type(at_ref)(model.p_ref, 1.0, "")
    assert model.adjust(0.7, at_ref) == pytest.approx(0.7)  # the typical timing leaves a cosine as it is
    for uninformative in (model.factor(Span("cam1", 0, 1), Span("cam1", 11, 12)),
                          model.factor(Span("cam1", None, None), Span("cam2", 11, 12))):
        assert uninformative.p is None and model.adjust(0.7, uninformative) == 0.7
    s = np.array([[0.7, 0.5]])
    assert np.array_equal(model.adjust_matrix(s, np.array([[np.nan, np.nan]])), s)


def test_gallery_with_time_unknown_is_visual_only():
    rng = np.random.default_rng(1)
    cents = [rng.normal(size=(2, 8)) for _ in range(3)]
    cents = [c / np.linalg.norm(c, axis=1, keepdims=True) for c in cents]
    unknown = [[Span("cam1", None, None)] * 2 for _ in range(3)]
    gallery = Gallery(["a", "b", "c"], cents, unknown)
    model = learn(synthetic(), PARAMS)
    for _ in range(20):
        f = rng.normal(size=8)
        f /= np.linalg.norm(f)
        plain = gallery.match(f, 0.3)
        for probe in (Span("cam2", None, None), Span("cam1", 5, 6)):
            m, fac, visual = gallery.match_st(f, 0.3, probe, model)
            assert m == plain and visual == plain.score and fac is not None and fac.p is None
        assert gallery.match_st(f, 0.3, Span("cam2", 5, 6), None)[0] == plain


def test_label_free_learning_finds_the_transition():
    rng = np.random.default_rng(2)
    people, dim = 30, 32
    ids = rng.normal(size=(people, dim))
    feats, spans = [], []
    for p in range(people):
        t = float(p * 40)  # people enter cam1 every 40 s, reach cam2 about 10 s later
        for cam, when in (("cam1", t), ("cam2", t + 10 + rng.normal())):
            f = ids[p] + 0.5 * rng.normal(size=dim)
            feats.append(f / np.linalg.norm(f))
            spans.append(Span(cam, when, when + 2))
    fit = learn_unlabelled(np.array(feats), spans, PARAMS, min_score=0.5, rounds=3)
    assert fit.model.source == "unlabelled" and fit.pairs >= people // 2
    hist = fit.model.hists[("cam1", "cam2")]
    assert abs(int(hist.argmax()) - 8) <= 1  # end of the cam1 sighting (t + 2) to cam2 (t + 10)


def test_model_json_round_trip(tmp_path):
    model = learn(synthetic(), PARAMS)
    path = model.save(tmp_path / "spacetime.json")
    back = load_model(path)
    assert back is not None and back.params == PARAMS and back.counts == model.counts
    assert back.p_st("cam1", "cam2", 10.0) == pytest.approx(model.p_st("cam1", "cam2", 10.0))
    assert load_model(tmp_path / "none.json") is None
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(StoreError, match="not a readable st model"):
        load_model(tmp_path / "bad.json")


def test_start_times_iso_8601():
    t = clock.parse_start("2026-12-02T10:15:00Z")
    assert clock.parse_start("2026-12-02T11:15:00+01:00") == t == clock.parse_start("2026-12-02 10:15:00")
    assert clock.iso(t + 3.2) == "2026-12-02T10:15:03.200Z" and clock.iso(None) is None
    assert clock.frame_time(t, 10.0, 25) == t + 2.5
    assert clock.frame_time(None, 10.0, 25) is None and clock.frame_time(t, 0.0, 25) is None
    with pytest.raises(InputError, match=r"not ISO-8601.*expected e.g. 2026-12-02T10:15:00Z"):
        clock.parse_start("yesterday at noon")
    assert clock.resolve_start("/no/such/file.mp4", "2026-12-02T10:15:00Z") == (t, clock.CLI)
    assert clock.resolve_start("/no/such/file.mp4", None) == (None, clock.UNKNOWN)


def _mp4(created: int) -> bytes:
    mvhd_payload = bytes([0, 0, 0, 0]) + struct.pack(">II", created, created) + bytes(88)
    mvhd = struct.pack(">I", 8 + len(mvhd_payload)) + b"mvhd" + mvhd_payload
    moov = struct.pack(">I", 8 + len(mvhd)) + b"moov" + mvhd
    ftyp = struct.pack(">I", 16) + b"ftypisom" + bytes(4)
    mdat = struct.pack(">I", 16) + b"mdat" + bytes(8)
    return ftyp + mdat + moov


def test_container_creation_time(tmp_path):
    t = clock.parse_start("2026-12-02T10:15:00Z")
    path = tmp_path / "cam.mp4"
    path.write_bytes(_mp4(int(t - clock._MP4_EPOCH)))
    assert clock.container_start(path) == pytest.approx(t)
    assert clock.resolve_start(path, None) == (pytest.approx(t), clock.CONTAINER)
    path.write_bytes(_mp4(0))  # what most encoders write: blank
    assert clock.container_start(path) is None
    (tmp_path / "x.avi").write_bytes(b"RIFF....AVI ")
    assert clock.container_start(tmp_path / "x.avi") is None
