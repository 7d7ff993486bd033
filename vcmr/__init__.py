"""vcmr: Video-Conditioned Music Representations.

    import vcmr
    model = vcmr.load_model("model.safetensors")
    emb = model.embed(audio, sample_rate=44100)
"""
__version__ = "0.1.0"

__all__ = ["__version__"]
