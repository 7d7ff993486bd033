"""vcmr: Video-Conditioned Music Representations.

    import vcmr
    model = vcmr.load_model("model.safetensors")     # or a .ckpt of any stage, or a registry name
    emb = model.embed(audio, sample_rate=44100)       # emb.embeddings, emb.starts, emb.ends
    song = vcmr.embed_file("song.mp3", model, song_level=True)

Importing vcmr is cheap (torch is loaded on first use) and never imports Lightning, PyAV,
PySceneDetect or transformers: the core install is enough to embed audio.
"""
from vcmr._version import __version__

__all__ = ["load_model", "embed_file", "available_models", "__version__"]


def load_model(name_or_path, device=None):
    """Model from a checkpoint (.ckpt, any stage), an exported .safetensors file or a
    pretrained name; see ``vcmr.api.EmbeddingModel`` for what it offers."""
    from vcmr.api import load_model as _load_model
    return _load_model(name_or_path, device)


def embed_file(path, model, overlap=0.0, song_level=False, space="encoder"):
    """Embeddings of an audio (or video) file: ``vcmr.api.Embeddings`` or the song mean."""
    from vcmr.api import embed_file as _embed_file
    return _embed_file(path, model, overlap, song_level, space)


def available_models():
    """Names accepted by ``load_model`` that download released weights (none published yet)."""
    from vcmr.pretrained import available_models as _available
    return _available()
