"""Open-set identification on the real pipeline, PETS09-S2L1 frames 0-399 (ingested as two runs, 0-199 and
200-399, so tracks cut by the run boundary are joined too): p01 and p07 enrolled with one click each on their
first visit; their second visits must be named, everyone else must come back unknown. bench/openset.py does the
same on the whole clip with four enrolled actors."""
import pytest

from reid_core.enrollment import enroll
from reid_core.groundtruth import load_mot_gt, load_persons, majority_gt_id
from reid_core.matching import identify
from reid_core.settings import Settings
from reid_core.types import Track
from tests.integration.conftest import GT, PERSONS, VIDEO

DEFAULT_THRESHOLD = Settings.from_env().threshold  # the embedder in use: its calibrated decision threshold

pytestmark = pytest.mark.quality  # run again under REID_PRECISION=f32 by `make test`

LAST = 399
ENROLL = {"p01": 19, "p07": 15}  # actor -> gt track of the first visit


@pytest.mark.slow
def test_revisits_named_strangers_unknown(store_copy):
    gt, persons = load_mot_gt(GT), load_persons(PERSONS)
    for person, gid in ENROLL.items():
        first = min(f for f, rows in gt.items() if any(g == gid for g, _ in rows))
        box = next(b for g, b in gt[first] if g == gid)
        enroll(store_copy, VIDEO, person, 0, 199, at_frame=first, box=box)
    decisions = identify(store_copy, VIDEO, 0, LAST)
    genuine, stranger = [], []
    for d in decisions:
        if len(d.frames) < 10:
            continue
        gid, purity = majority_gt_id(Track(d.track_id, "", "", frames=d.frames, boxes=d.boxes), gt)
        if gid is None or gid in ENROLL.values():
            continue
        row = (d.label, persons[gid], d.match.best_match, round(d.match.score, 3))
        if persons[gid] in ENROLL:
            genuine.append(row)
        else:
            stranger.append(row)
    print(f"threshold {DEFAULT_THRESHOLD}\ngenuine {genuine}\nstranger {stranger}")
    assert len(genuine) >= 2 and len(stranger) >= 4
    named = [g for g in genuine if g[2] == g[1] and g[3] >= DEFAULT_THRESHOLD]
    false = [s for s in stranger if s[3] >= DEFAULT_THRESHOLD]
    assert len(named) / len(genuine) >= 0.95, f"revisits not named: {set(genuine) - set(named)}"
    assert len(false) / len(stranger) <= 0.05, f"strangers given a name: {false}"
