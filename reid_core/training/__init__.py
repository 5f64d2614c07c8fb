"""Training embedders: self-supervised MoCo v2, supervised fine-tuning, and label-free adaptation to a site.

- data.py: training crops (store tracks or a Market-layout folder), augmentations, the P x K batch sampler
- losses.py: identity cross-entropy, batch-hard triplet, InfoNCE
- supervised.py / moco.py: the two objectives, as tasks for the engine
- pseudo_labels.py: the store's tracks as pseudo-identities (switch guard, sure negatives, re-entry merging)
- engine.py: the loop (DDP, schedule, resumable checkpoints, CSV + TensorBoard logs)
- validation.py: per-epoch scoring on a held-out MOT sequence
- recipes.py: pretrain_moco, finetune, adapt - what the CLI and pretrain/ scripts call

Networks and model files are in reid_core.models; this package sits beside reid_core.evaluation, above ingest/store.
"""
