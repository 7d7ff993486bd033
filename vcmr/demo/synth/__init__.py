"""Synthetic music-video world with known truth: tag sets (:mod:`vcmr.demo.synth.tags`),
tagged music (:mod:`vcmr.demo.synth.music`, sounds in :mod:`vcmr.demo.synth.timbres`), music
videos that follow it (:mod:`vcmr.demo.synth.video`), a corpus of videos with faulty cases
(:mod:`vcmr.demo.synth.corpus`) and MagnaTagATune / MTG-Jamendo datasets in their real on-disk
formats (:mod:`vcmr.demo.synth.formats`). Submodules are imported on use (PyAV and OpenCV are
needed only for videos).

The demo, the ``vcmr synth`` command, the tests and the benchmarks use it; nothing else in vcmr
does."""

__all__ = ["tags", "music", "timbres", "video", "corpus", "formats"]
