"""The default ingest samples features and detects every 2nd frame of PETS (7 fps): crops without a feature and
interpolated boxes are stored, marked, and every flow handles them (the flows' own tests run on this same store)."""
import dataclasses
import json
import subprocess

from reid_core.ingest import ensure_ingested, ingest
from reid_core.matching import identify, search_image, verify
from reid_core.settings import Settings
from reid_core.store import Store
from tests.integration.conftest import VIDEO, reid_cli


def test_default_store_holds_sampled_and_interpolated_crops(pets_store):
    store, result = pets_store
    assert result.run.settings["detect_every"] == 2 and result.run.settings["feature_every"] == 5
    keys = store.all_crop_keys()
    _, present = store.features_where(keys)
    crops = store.get_crops(keys, jpeg=False, feature=True)
    interpolated = [c for c in crops if c.interpolated]
    assert 0.2 < present.mean() < 0.8  # many crops without a feature, every track with some
    assert interpolated and all(c.feature is None for c in interpolated)
    # the detector ran on frames 0, 2, ..., 198 and the range's last, 199; the others are interpolated (and a few
    # detector frames where a track was missed between two sightings)
    assert all(c.frame % 2 == 0 or c.frame == 199 for c in crops if not c.interpolated)
    assert sum(c.frame % 2 for c in interpolated) > 0.8 * len(interpolated)
    report = store.check(isolated=False)
    assert report.ok, report.problems
    for t in store.tracks():  # each track has a feature of its own somewhere
        assert store.features_where(t.keys)[1].any(), t.track_id


def test_flows_on_a_sampled_store(store_copy):
    """Search ranks only crops with their own feature; enroll/verify/identify work on tracks with few."""
    from reid_core.enrollment import enroll

    keys = store_copy.all_crop_keys()
    feats, present = store_copy.features_where(keys)
    featured = {k for k, ok in zip(keys, present) if ok}
    crop = store_copy.get_crops([sorted(featured)[0]])[0]
    assert crop.jpeg is not None
    hits = search_image(store_copy, crop.jpeg, top_k=None)
    assert hits and all(h.key in featured for h in hits)
    assert hits[0].track_id == crop.track_id and hits[0].score > 0.95  # its own track (the JPEG costs a little)
    track = max(store_copy.tracks(), key=len)
    r = enroll(store_copy, VIDEO, "walker", 0, 199, track=str(track.track_id))
    assert r.added_keys and any(not ok for k, ok in zip(*_presence(store_copy, r.added_keys)))
    assert verify(store_copy, VIDEO, "walker", 0, 199).match
    named = [d for d in identify(store_copy, VIDEO, 0, 199) if d.match.identity == "walker"]
    assert named and any(track.track_id == d.track_id for d in named)


def _presence(store, keys):
    return keys, store.features_where(keys)[1]


def test_footage_ingested_with_every_crop_still_serves(tmp_path):
    """A store ingested before sampling was the default (every crop embedded, every frame detected) is used as it
    is: flows do not ingest it again (which would overlap and fail)."""
    store = Store(tmp_path / "s")
    legacy = Settings.from_env().ingest
    legacy = dataclasses.replace(legacy, feature_every=1, detect_every=1)
    ingest(VIDEO, store, from_frame=0, to_frame=20, settings=legacy)
    runs = store.runs()
    ensure_ingested(store, VIDEO, 0, 20)
    assert store.runs() == runs
    assert all(c.feature is not None and not c.interpolated
               for c in store.get_crops(store.all_crop_keys(), jpeg=False, feature=True))


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([*reid_cli(), *args], capture_output=True, text=True, env=env, timeout=300)


def test_cli_sampling_options(cli_env, tmp_path):
    out = _cli("ingest", str(VIDEO), "--to-frame", "15", "--detect-every", "1", "--feature-every", "1",
               "--store", str(tmp_path / "s"), "--json", env=cli_env)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["detect_every"] == 1 and r["feature_every"] == 1
    bad = _cli("ingest", str(VIDEO), "--detect-every", "0", "--store", str(tmp_path / "s"), env=cli_env)
    assert bad.returncode != 0 and "--detect-every" in bad.stderr and "Traceback" not in bad.stderr
    both = _cli("ingest", str(VIDEO), "--to-frame", "15", "--detect-every", "2", "--stride", "2",
                "--store", str(tmp_path / "t"), env=cli_env)
    assert both.returncode != 0 and "stride" in both.stderr and "Traceback" not in both.stderr
