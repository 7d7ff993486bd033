"""Metrics as plain functions of arrays, shared by training (validation) and evaluation.

- :mod:`vcmr.metrics.songs`: a song cut into segments for each overlap ratio, and segment
  scores aggregated into one song score per tag (NumPy);
- :mod:`vcmr.metrics.tagging`: ROC-AUC / PR-AUC per tag, over all tags and per tag category
  (scikit-learn, a ``train`` extra);
- :mod:`vcmr.metrics.bootstrap`: paired bootstrap over songs of the difference of two models'
  macro ROC-AUC / PR-AUC (NumPy);
- :mod:`vcmr.metrics.retrieval`: audio <-> video Recall@K and median rank (torch).

Nothing here knows of Lightning, configs or files, and nothing here imports another part of
vcmr but :mod:`vcmr.errors`: ``train`` and ``evaluate`` both build on it. The submodules are
not imported here, so retrieval metrics do not need scikit-learn.
"""
