"""vcmr: Video-Conditioned Music Representations.

    import vcmr
    model = vcmr.load_model("model.safetensors")     # or a .ckpt of any stage, or hf://ORG/NAME
    emb = model.embed(audio, sample_rate=44100)       # emb.embeddings, emb.starts, emb.ends
    song = vcmr.embed_file("song.mp3", model, song_level=True)

Importing vcmr is cheap (torch is loaded on first use) and never imports Lightning, PyAV,
PySceneDetect or transformers: the core install is enough to embed audio.
"""
from vcmr._version import __version__

__all__ = ["load_model", "embed_file", "__version__"]


def load_model(name_or_path, device=None):
    """Model from a checkpoint (.ckpt, any stage), an exported .safetensors file, its Hub folder
    or hf://ORG/NAME; see ``vcmr.inference.EmbeddingModel`` for what it offers."""
    from vcmr.io.load import load_model as _load_model  # lazy: `import vcmr` does not load torch
    return _load_model(name_or_path, device)


def embed_file(path, model, overlap=0.0, song_level=False, space="encoder"):
    """Embeddings of an audio (or video) file: ``vcmr.inference.Embeddings`` or the song mean."""
    from vcmr.inference import embed_file as _embed_file  # lazy, as above
    return _embed_file(path, model, overlap, song_level, space)
