"""Synthetic music-video world with known truth: tagged music (:mod:`vcmr.synth.music`), music
videos that follow it (:mod:`vcmr.synth.video`), a corpus of videos with faulty cases
(:mod:`vcmr.synth.corpus`) and MagnaTagATune / MTG-Jamendo datasets in their real on-disk
formats (:mod:`vcmr.synth.formats`). Submodules are imported on use (PyAV and OpenCV are needed
only for videos)."""

__all__ = ["music", "video", "corpus", "formats"]
