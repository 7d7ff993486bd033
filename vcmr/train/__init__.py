"""Training: one module per stage on one shared skeleton.

| module | holds |
|---|---|
| ``base`` | ``StageModule`` (network, hyper-parameters, reload, optimiser), ``loader``, ``fit_stage`` |
| ``trainer`` | the Lightning Trainer: logs, checkpoints, devices, precision, resume, SIGTERM |
| ``music`` / ``video`` / ``tagging`` | each stage's steps, datasets, checks and ``train_<stage>`` |
| ``optim`` | optimisers by name |
"""
