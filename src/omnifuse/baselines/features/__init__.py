"""Classical features per modality, one module each; ``blocks`` turns a model input into a feature block."""
