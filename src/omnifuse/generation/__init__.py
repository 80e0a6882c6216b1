"""Generation (label.task: generation): media encoders projected into a causal language model's prefix.

``vocab`` (the word vocabulary of ``tiny_decoder``), ``lm`` (the language model), ``projector`` (encoder
features -> LM width), ``model`` (GenerationModel: composition, the masked loss, ``generate``), ``evaluate``
(generated answers scored against the targets, for reports).
"""
