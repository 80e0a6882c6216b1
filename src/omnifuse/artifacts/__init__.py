"""The model folder: writing and reading it (``folder``: config.yaml, preprocessors.json, assets/,
model.safetensors), its checksums (``manifest``) and its model card (``model_card``)."""
