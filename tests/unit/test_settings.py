"""Settings are read from the environment when built, never at import time; every knob is in the run digest."""
import hashlib
import json
from dataclasses import asdict, replace

from reid_core.calibration import calibration_for
from reid_core.settings import IngestSettings, Settings, ingest_settings_for
from reid_core.tracking import TrackerConfig

OSNET = "osnet_x0_25_msmt17"
INTEL = "person-reidentification-retail-0287"


def test_built_from_the_environment_when_asked(monkeypatch):
    monkeypatch.setenv("REID_EMBEDDER", OSNET)
    monkeypatch.setenv("REID_STORE", "/tmp/somewhere")
    s = Settings.from_env()
    assert s.embedder == OSNET and str(s.store) == "/tmp/somewhere"
    monkeypatch.setenv("REID_EMBEDDER", INTEL)  # a later call sees the change: nothing was frozen at import
    assert Settings.from_env().embedder == INTEL
    assert Settings.from_env(embedder=OSNET, store="x").embedder == OSNET  # an option beats the environment
    assert Settings.from_env({}).embedder == INTEL and str(Settings.from_env({}).store) == "gallery"


def test_derived_values_refer_to_the_embedders_calibration():
    for name in (OSNET, INTEL):
        s = Settings.from_env({}, embedder=name)
        cal = calibration_for(name)
        assert s.threshold == cal.threshold and s.segments.change_similarity == cal.change_similarity
        assert s.ingest.tracker.appearance_gate == cal.appearance_gate
    # switching the embedder moves the tracker gate with it (a replace() of the name alone would not)
    assert Settings.from_env({}, embedder=INTEL).with_embedder(OSNET).ingest == ingest_settings_for(OSNET)


def test_every_tracker_knob_changes_the_digest():
    base = ingest_settings_for(INTEL)
    for knob, value in (("gmc_method", "sparseOptFlow"), ("proximity_thresh", 0.4), ("appearance_thresh", 0.2),
                        ("track_buffer", 10), ("appearance_gate", 0.5)):
        other = replace(base, tracker=replace(base.tracker, **{knob: value}))
        assert other.digest() != base.digest(), knob


def test_runs_stored_before_the_new_knobs_keep_their_id():
    """The digest of settings with the once-hard-coded knobs at their old values equals the digest computed the
    old way (without those keys), and a stored settings dict without them matches."""
    s = replace(ingest_settings_for(INTEL), feature_every=1, detect_every=1)  # every crop, every frame: as then
    old = asdict(s)
    for key in ("gmc_method", "proximity_thresh", "appearance_thresh"):
        old["tracker"].pop(key)
    for key in ("feature_every", "detect_every"):
        old.pop(key)
    assert s.digest() == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:16]
    assert s.matches(old) and s.matches(asdict(s))
    assert not replace(s, flip=True).matches(old)
    assert IngestSettings(tracker=TrackerConfig(gmc_method="orb")).digest() != IngestSettings().digest()


def test_sampling_knobs_change_the_run_but_not_which_footage_serves():
    """A run ingested with other sampling (e.g. every crop embedded, before sampling was the default) has another
    id but still serves the flows: ensure_ingested does not ingest that footage again."""
    s = ingest_settings_for(INTEL)
    every_crop = replace(s, feature_every=1, detect_every=1)
    assert every_crop.digest() != s.for_video(7.0).digest()
    assert s.covers(asdict(every_crop)) and s.for_video(25.0).covers(asdict(every_crop))
    assert not s.covers(asdict(replace(every_crop, flip=True)))
    assert not s.covers(asdict(replace(every_crop, tracker=replace(s.tracker, track_buffer=10))))


def test_detect_every_is_chosen_from_the_frame_rate():
    s = ingest_settings_for(INTEL)
    assert s.detect_every == 0  # decided per video
    assert s.for_video(7.0).detect_every == 2 and s.for_video(30.0).detect_every == 2
    assert s.for_video(5.0).detect_every == 1  # every 2nd frame would be under 3.5 detections a second
    assert replace(s, detect_every=3).for_video(30.0).detect_every == 3  # an explicit choice stays
