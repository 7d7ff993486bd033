"""Audio I/O and batched waveform augmentations."""
from vcmr.audio.io import AudioReadError, find_audio_files, read_audio, resample, to_mono, write_wav

__all__ = ["AudioReadError", "find_audio_files", "read_audio", "resample", "to_mono", "write_wav"]
