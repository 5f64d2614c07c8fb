"""Drawing decisions on a synthetic image: box colours by known/unknown, the emphasised box drawn thicker and on
top, label tags above the box (inside it at the top edge), and the frame -> overlays map. No video, no store."""
import numpy as np

from reid_core.annotate import KNOWN_BGR, UNKNOWN_BGR, Overlay, decision_label, draw, overlays_for_decisions, stamp
from reid_core.matching import TrackDecision
from reid_core.types import Box, Match


def grey(h=360, w=480):
    return np.full((h, w, 3), 128, np.uint8)


def is_colour(pixel, bgr):
    return tuple(int(v) for v in pixel) == bgr


def test_boxes_are_drawn_in_the_decision_colour_on_a_copy():
    img = grey()
    out = draw(img, [Overlay(Box(100, 120, 60, 150), "", True), Overlay(Box(300, 100, 80, 160), "", False)])
    assert out is not img and (img == 128).all()  # the input is left alone
    assert is_colour(out[200, 100], KNOWN_BGR) and is_colour(out[120, 130], KNOWN_BGR)  # left and top edges
    assert is_colour(out[180, 380], UNKNOWN_BGR)  # right edge of the unknown box
    assert is_colour(out[200, 130], (128, 128, 128))  # inside the box: untouched
    assert is_colour(out[20, 20], (128, 128, 128))
    thin = (out[200, 95:106] == KNOWN_BGR).all(axis=1).sum()
    hot = draw(img, [Overlay(Box(100, 120, 60, 150), "", True, emphasis=True)])
    assert (hot[200, 95:106] == KNOWN_BGR).all(axis=1).sum() > thin  # emphasis: a thicker line


def test_labels_sit_above_the_box_or_inside_at_the_top_edge():
    img = grey()
    out = draw(img, [Overlay(Box(100, 200, 60, 120), "alice · 82% · track 3", True)])
    above = out[:197]  # everything above the box's top edge (3 px line at this size)
    ys, xs = np.nonzero((above == KNOWN_BGR).all(axis=2))
    assert len(ys) > 100 and xs.min() >= 100 and ys.max() == 196  # a filled tag, left-aligned, right on the box
    assert xs.max() > 160  # wider than the box: the whole label fits
    tag = above[ys.min():, xs.min():xs.max() + 1]
    assert ((tag < 60).all(axis=2)).any()  # dark text on the tag
    top = draw(img, [Overlay(Box(100, 0, 60, 120), "unknown · track 4", False)])  # no room above: inside the box
    assert (top[4:12, 104:150] == UNKNOWN_BGR).all(axis=2).mean() > 0.3
    assert (draw(img, [Overlay(Box(100, 200, 60, 120), "", True)])[:197] == 128).all()  # no label, no tag


def test_emphasised_overlay_is_drawn_on_top():
    img = grey()
    same = Box(50, 50, 100, 100)
    out = draw(img, [Overlay(same, "", True, emphasis=True), Overlay(same, "", False)])
    assert is_colour(out[100, 50], KNOWN_BGR)  # listed first, still drawn last


def test_overlays_for_decisions_and_labels():
    named = TrackDecision(3, Match("alice", "alice", 0.824, 0.6), [10, 11], [Box(0, 0, 5, 10), Box(1, 0, 5, 10)])
    stranger = TrackDecision(4, Match(None, "bob", 0.41, 0.6), [11], [Box(9, 9, 5, 10)], segment=2)
    assert decision_label(named) == "alice · 82% · track 3"
    assert decision_label(stranger) == "unknown · track 4.2"
    by_frame = overlays_for_decisions([named, stranger])
    assert sorted(by_frame) == [10, 11]
    assert by_frame[10] == [Overlay(Box(0, 0, 5, 10), "alice · 82% · track 3", True)]
    assert [(o.box, o.known) for o in by_frame[11]] == [(Box(1, 0, 5, 10), True), (Box(9, 9, 5, 10), False)]
    assert overlays_for_decisions([]) == {}


def test_stamp_writes_white_on_black_in_the_bottom_left_corner():
    img = grey()
    out = stamp(img, "frame 12 · 0.5 s")
    assert out is img  # in place
    corner = img[-20:, :60]
    assert (corner == 0).all(axis=2).any() and (corner > 200).all(axis=2).any()  # black tag, light text
    assert (img[:100] == 128).all()
