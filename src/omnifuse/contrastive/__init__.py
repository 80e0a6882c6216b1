"""Contrastive pretraining: losses, the embedding queue, the two-tower (or more) model, zero-shot."""
