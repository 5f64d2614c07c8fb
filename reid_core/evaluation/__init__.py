"""Scoring re-identification the way papers do: rank metrics, verification, re-ranking, dataset protocols.

Modules: `metrics` (mAP / CMC / mINP, Market-1501 protocol), `verification` (ROC, TAR@FAR, EER), `rerank`
(k-reciprocal re-ranking, exact and shortlist), `datasets` (Market-1501 layout, MOTChallenge-as-ReID, feature
files), `features` (query expansion, track-level features), `plots` (CMC and ROC PNGs), `runner` (ties them
together; the `--best` settings). Nothing here imports the CLI or the app.
"""
