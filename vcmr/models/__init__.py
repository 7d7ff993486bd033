"""Neural network modules: encoders, heads, and the three stage networks built from them
(``vcmr.models.stages``: ``build(stage, cfg)``). No Lightning, no files."""
from vcmr.models.heads import projector, tagging_head
from vcmr.models.sample_cnn import SampleCNN, check_audio_length
from vcmr.models.video import VideoEncoder, video_seconds

__all__ = ["SampleCNN", "check_audio_length", "projector", "tagging_head", "VideoEncoder",
           "video_seconds"]
