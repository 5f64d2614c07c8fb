"""Face evidence in the store: the faces of a track (found in its stored person crops, cached per crop) and the
faces of an identity (enrolled photos, plus the faces on the crops it was enrolled from); enrollment from a photo.

A track's faces are looked for lazily, the first time a decision needs them, and cached as annotations of the
crop they came from (kind "face": 256 float32 feature + quality + box; an empty value means "looked, none";
kind "face_jpeg": the aligned 128x128 face), so they are erased with the crop: by delete_run, and by
delete_identity for enrolled crops. Photo faces live in the identity record (Identity.faces) and go with it.
Only crops whose box could hold a face of MIN_FACE_PX are looked at (PETS boxes are at most ~150 px tall: none
are, so face evidence costs nothing there), and at most MAX_LOOKS per track.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field

import numpy as np

from reid_core.crops import decode_image, encode_jpeg
from reid_core.errors import InputError
from reid_core.face import MIN_FACE_PX, Face, load_face_models
from reid_core.fusion import FACE_THRESHOLD
from reid_core.names import validate_name, validate_new_name
from reid_core.store import Store
from reid_core.types import Box, FaceSample, Identity, Track
from reid_core.vectors import l2_normalize

FACE_KIND, THUMB_KIND = "face", "face_jpeg"
PERSON_PX_PER_FACE = 5.0  # a face is at most about a fifth of its person box's height (less for a whole body)
MIN_PERSON_PX = MIN_FACE_PX * PERSON_PX_PER_FACE  # smaller person boxes are never looked at
# Crops per track a face is looked for in (spread over the track). A profile is at the frontal model's threshold:
# on data/faces' clip Alex's 59-crop track scores 0.12 when 12 crops are looked at and 0.19 when all are (his few
# most frontal frames decide). About 45 ms a crop on 2 busy cores, once: the result is cached with the crop.
MAX_LOOKS = 64
BEST_K = 5  # faces per track kept for the decision, best quality first
CENTRE_SHARE = 0.7  # a face must sit in the middle share of the crop's width: at the edges it is a neighbour's


@dataclass
class TrackFaces:
    """The faces found on a track: their mean feature (None: no usable face) and the crops they came from."""

    feature: np.ndarray | None
    keys: list[str] = field(default_factory=list)  # best first; store.get_annotations(THUMB_KIND, keys) shows them
    qualities: list[float] = field(default_factory=list)


def _pack(face: Face, offset: tuple[float, float]) -> bytes:
    b = face.box
    extra = np.array([face.quality, b.x + offset[0], b.y + offset[1], b.w, b.h], np.float32)
    return np.concatenate([face.feature.astype(np.float32), extra]).tobytes()


def _unpack(raw: bytes) -> tuple[np.ndarray, float, Box] | None:
    if not raw:
        return None
    v = np.frombuffer(raw, np.float32)
    return v[:-5].copy(), float(v[-5]), Box(*(float(x) for x in v[-4:]))


def _own_face(faces: list[Face], crop_w: int) -> Face | None:
    """The person's face in their crop: the best one near the middle (a face at the side belongs to someone
    standing beside or behind them)."""
    margin = crop_w * (1 - CENTRE_SHARE) / 2
    mine = [f for f in faces if margin <= f.box.x + f.box.w / 2 <= crop_w - margin]
    return max(mine, key=lambda f: f.quality) if mine else None


def _spread(keys: list[str]) -> list[str]:
    """At most MAX_LOOKS of the keys, evenly spread (a track's frames in time order)."""
    if len(keys) <= MAX_LOOKS:
        return keys
    return [keys[round(j * (len(keys) - 1) / (MAX_LOOKS - 1))] for j in range(MAX_LOOKS)]


def crop_faces(store: Store, keys: list[str]) -> dict[str, tuple[np.ndarray, float, Box]]:
    """Face (feature, quality, box in crop pixels) of each crop that has one, computed once per crop and cached."""
    cached = store.get_annotations(FACE_KIND, keys)
    todo = [k for k in keys if k not in cached]
    if todo:
        models = load_face_models()
        found, thumbs = {}, {}
        for crop in store.get_crops(todo, jpeg=True):
            assert crop.jpeg is not None
            image = decode_image(crop.jpeg)
            # the face is in the upper part: a near-square top region keeps the 300x300 detector input undistorted
            top = image[:max(1, min(image.shape[0], int(image.shape[1] * 1.3)))]
            face = _own_face(models.faces(top), image.shape[1])
            found[crop.key] = _pack(face, (0.0, 0.0)) if face is not None else b""
            if face is not None:
                thumbs[crop.key] = encode_jpeg(face.aligned)
        store.put_annotations(FACE_KIND, found)
        if thumbs:
            store.put_annotations(THUMB_KIND, thumbs)
        cached.update(found)
    out = {}
    for k in keys:
        unpacked = _unpack(cached.get(k, b""))
        if unpacked is not None:
            out[k] = unpacked
    return out


def track_faces(store: Store, track: Track) -> TrackFaces:
    """A track's face evidence: the quality-weighted mean of its BEST_K best faces."""
    return faces_of(store, [k for k, b in zip(track.keys, track.boxes) if b.h >= MIN_PERSON_PX])


def faces_of(store: Store, keys: list[str]) -> TrackFaces:
    """Face evidence of one person's crops (already limited to boxes tall enough), looked for in MAX_LOOKS."""
    looked = _spread(keys)
    if not looked:
        return TrackFaces(None)
    faces = _one_person(sorted(crop_faces(store, looked).items(), key=lambda kv: -kv[1][1]))[:BEST_K]
    if not faces:
        return TrackFaces(None)
    feats = np.stack([f for _, (f, _, _) in faces])
    q = np.array([quality for _, (_, quality, _) in faces], np.float32)
    return TrackFaces(l2_normalize((feats * q[:, None]).sum(0)).astype(np.float32), [k for k, _ in faces],
                      [float(x) for x in q])


def _one_person(faces: list) -> list:
    """The faces (best first) that agree with the face most others agree with: a track the tracker carried from
    one person to another (a scene cut, a crossing) shows two people's faces, and only one of them is its own."""
    if len(faces) < 3:
        return faces
    feats = np.stack([f for _, (f, _, _) in faces])
    agree = (feats @ feats.T) >= FACE_THRESHOLD
    centre = int(np.argmax(agree.sum(1)))  # first (best quality) among equals
    return [face for face, ok in zip(faces, agree[centre]) if ok]


def identity_faces(store: Store, ident: Identity) -> np.ndarray:
    """(N, 256) face features of an identity: each enrolled photo, and per enrolled track the mean of the faces on
    its enrolled crops (one look, as a track's faces are). (0, 256) when it has none."""
    rows = [f.vector() for f in ident.faces]
    if ident.keys:
        groups: dict[int, list[tuple[int, str]]] = {}
        for c in store.get_crops(ident.keys, jpeg=False):
            if c.box.h >= MIN_PERSON_PX:
                groups.setdefault(c.track_id, []).append((c.frame, c.key))
        for crops in groups.values():
            tf = faces_of(store, [k for _, k in sorted(crops)])
            if tf.feature is not None:
                rows.append(tf.feature)
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 256), np.float32)


# ---- enrollment from a photo ------------------------------------------------------------------------------------
@dataclass
class PhotoEnrollResult:
    identity: Identity
    face: FaceSample
    box: Box  # the enrolled face in the photo, pixels
    faces_found: int
    warnings: list[str] = field(default_factory=list)


def enroll_photo(store: Store, image: bytes, name: str, source: str = "photo") -> PhotoEnrollResult:
    """Make (or add to) identity `name` from the face in a photo: no body needed. A photo with several faces
    enrolls the largest (the usual portrait: the subject in front) and says so; crop the photo to pick another."""
    name = validate_name(name)
    if store.identity(name) is None:
        validate_new_name(name, [i.name for i in store.identities()])
    picture = decode_image(image)
    faces = load_face_models().faces(picture)
    if not faces:
        raise InputError(f"no face found in the photo ({picture.shape[1]}x{picture.shape[0]} px; a face must be "
                         f"at least {MIN_FACE_PX} px tall and seen from the front)",
                         cli_hint="use a clear frontal photo of the person", app_hint="upload a clear frontal photo")
    face = max(faces, key=lambda f: f.box.h * f.box.w)
    warnings = []
    if len(faces) > 1:
        warnings.append(f"{len(faces)} faces in the photo: enrolled the largest, at {_xywh(face.box)} (x,y,w,h); "
                        f"crop the photo to enroll another one")
    sample = FaceSample(base64.b64encode(face.feature.astype(np.float32).tobytes()).decode(),
                        base64.b64encode(encode_jpeg(face.aligned)).decode(), round(face.quality, 4), source)
    ident = store.add_identity_faces(name, [sample])
    return PhotoEnrollResult(ident, sample, face.box, len(faces), warnings)


def _xywh(box: Box) -> str:
    return ",".join(str(int(round(v))) for v in box.as_list())


def thumb_bytes(sample: FaceSample) -> bytes:
    return base64.b64decode(sample.thumb)


@dataclass
class FaceGallery:
    """Every identity with a face: its face features (photos and enrolled video), best match counts."""

    names: list[str]
    feats: list[np.ndarray]  # per identity (N, 256)

    @classmethod
    def load(cls, store: Store) -> FaceGallery:
        names, feats = [], []
        for ident in store.identities():
            f = identity_faces(store, ident)
            if len(f):
                names.append(ident.name)
                feats.append(f)
        return cls(names, feats)

    def scores(self, feature: np.ndarray) -> dict[str, float]:
        return {n: float((f @ feature).max()) for n, f in zip(self.names, self.feats)}
