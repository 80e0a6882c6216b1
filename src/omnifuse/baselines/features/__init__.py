"""Classical features, one module per modality (``omnifuse.baselines.blocks`` puts them together)."""
