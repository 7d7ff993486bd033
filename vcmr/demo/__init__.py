"""``vcmr demo``: the paper's whole experiment in miniature, on synthetic data, with a report.

- :mod:`vcmr.demo.run`: the scales, every stage's config and the run itself (``run_demo``);
- :mod:`vcmr.demo.report`: ``report.md`` and ``report.html`` from the run's facts;
- :mod:`vcmr.demo.synth`: the synthetic music, music videos and tagging datasets (also behind
  ``vcmr synth``, the tests and the benchmarks).

The demo sits on top of everything else: it calls ``prepare``, ``train`` and ``evaluate``, and
no other part of vcmr imports it. Nothing is imported here, so ``vcmr.demo.synth`` loads
without the training stack.
"""
