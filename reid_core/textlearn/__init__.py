"""The learned text branch: PETA attribute heads and a small text encoder over the store's stored features.

- peta.py: PETA images, per-identity labels, the seeded identity split, features cached per embedder
- vocab.py: which PETA labels become heads, and their groups (colours per region, bags, footwear...)
- captions.py: sentences generated from a person's labels (training: many templates; scoring: fixed phrasings)
- tokens.py: the CLIP BPE tokenizer over a compact vocabulary
- model.py: the network (heads + text encoder + image adapter) and its model file
- engine.py: what search uses: head probabilities of stored features, text embeddings, scores

Training lives in reid_core.training.text; the search plumbing in reid_core.text_search.
"""
