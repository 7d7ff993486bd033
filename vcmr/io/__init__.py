"""Model files: reading and writing everything that holds vcmr weights.

| module | what |
|---|---|
| ``load`` | ``load_model``: the one entry, any file or Hub name -> ``EmbeddingModel`` |
| ``checkpoint`` | vcmr training checkpoints (.ckpt): read, check a resume file, the encoder alone |
| ``model_file`` | exported model files (.safetensors): write, read, ``vcmr export`` |
| ``hub`` | Hugging Face Hub: ``hf://ORG/NAME[@REVISION]`` and the folder ``--hub_dir`` writes |
| ``card`` | the model card (README.md) of that folder |
| ``versions`` | library versions recorded in model files; the load-time warning |
| ``foreign`` | the VCMR authors' and CLMR's checkpoints, converted to vcmr's config and weights |
| ``layouts`` | recognising those foreign layouts by their keys |
| ``safe`` | the one ``torch.load(weights_only=True)`` reader |

Dependency order: ``safe`` < ``layouts`` < ``foreign`` < ``checkpoint`` < ``card`` and
``versions`` < ``model_file`` < ``hub`` < ``load``; ``safe`` and ``layouts`` are leaves the config
loader can use.
"""
