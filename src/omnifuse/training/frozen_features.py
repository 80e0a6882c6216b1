"""Which inputs are served from cached features, and the rows that carry them (train and `compare`).

An input is cached when its encoder is frozen for the whole run (``freeze_epochs: -1``) and its weights
do not depend on the seed (pretrained weights; ``frozen_fingerprint`` builds it under two seeds). Its
features are computed once per run over the training and validation rows (``cache_features``), read
from and written to the disk cache (``omnifuse.training.disk_cache``) when ``training.feature_cache``
is on, so later runs and ``omnifuse compare`` skip the encoder entirely.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
from rich.console import Console
from rich.markup import escape

from omnifuse.build import build_encoder
from omnifuse.config.binding import encoder_options
from omnifuse.config.parsing import to_dict
from omnifuse.config.sections import Config
from omnifuse.data.collate import Example
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.encoders.base import Encoder
from omnifuse.training.disk_cache import FeatureStore, cache_root, encoder_key, state_fingerprint
from omnifuse.training.feature_cache import cache_features

SPLITS = ("train", "valid")  # the rows training reads; test rows keep their raw inputs (robustness)


@dataclass
class FeatureCache:
    """Training and validation rows with cached features in place of the inputs of ``names``."""

    names: list[str]  # inputs served from the cache: frozen for the whole run, weights seed-independent
    examples: dict[str, list[Example]]  # "train" and "valid" rows, copies of PreparedData.examples
    stores: dict[str, FeatureStore] = dataclasses.field(default_factory=dict)  # the disk cache per input


def frozen_fingerprint(build: Callable[[], Encoder]) -> tuple[Encoder, str] | None:
    """Builds the encoder under torch seeds 0 and 1; returns (encoder, weights hash) when both builds
    have the same weights, None when they differ (randomly initialised). The random state is kept."""
    built: list[tuple[Encoder, str]] = []
    for seed in (0, 1):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder = build()
            built.append((encoder, state_fingerprint(encoder)))
    (_, first), (encoder, second) = built
    return (encoder, second) if first == second else None


def _encoder_builder(cfg: Config, preprocessors: dict[str, Preprocessor], name: str,
                     ) -> tuple[Callable[[], Encoder], dict[str, object]]:
    """A builder of input ``name``'s encoder and its options as plain values (for the cache key)."""
    plain = to_dict(encoder_options(cfg.encoder_of(name), f"{name}.encoder"))  # the options as plain values

    def build() -> Encoder:
        from omnifuse.contrastive.init_from import init_encoder  # the pretrained tower's weights, if any

        return build_encoder(cfg, name, preprocessors[name], None, init_encoder)

    return build, plain


def build_feature_cache(
    cfg: Config,
    preprocessors: dict[str, Preprocessor],
    examples: dict[str, list[Example]],
    console: Console,
    disk: bool = True,
) -> FeatureCache:
    """Caches the features of each input whose encoder is frozen (``freeze_epochs: -1``) and seed-independent.

    Args:
        cfg: the run's config (its inputs, encoders, batch size, accelerator).
        preprocessors: fitted preprocessors by input name.
        examples: preprocessed rows by split; "train" and "valid" are cached, they are not changed.
        console: where the summary line goes.
        disk: read and write the disk cache (``training.feature_cache``); False keeps it in memory only.

    Returns:
        The cached inputs' names and copies of the train / valid rows holding their features.
    """
    rows = {split: examples[split] for split in SPLITS if split in examples}
    cache = FeatureCache([], rows)
    gpu = cfg.training.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    for name in cfg.input_names():
        if cfg.encoder_of(name).freeze_epochs != -1:
            continue
        build, options = _encoder_builder(cfg, preprocessors, name)
        found = frozen_fingerprint(build)
        if found is None:
            console.print(f"[yellow]{escape(name)}: frozen but randomly initialised; not cached[/yellow]")
            continue
        encoder, weights = found
        store = FeatureStore(cache_root(), encoder_key(cfg.encoder_of(name).name, options, weights))
        batch = cfg.training.batch_size
        cache.examples = {s: cache_features(encoder, r, name, batch, device, store if disk else None)
                          for s, r in cache.examples.items()}
        cache.names.append(name)
        cache.stores[name] = store
        del encoder
    _report(cache, cfg, console, disk)
    return cache


def training_cache(
    cfg: Config, preprocessors: dict[str, Preprocessor], examples: dict[str, list[Example]], console: Console
) -> FeatureCache | None:
    """The cache ``train`` uses: None when ``training.feature_cache`` is off or no encoder is frozen for the
    whole run, else ``build_feature_cache`` with the disk cache."""
    frozen = any(cfg.encoder_of(n).freeze_epochs == -1 for n in cfg.input_names())
    if not (cfg.training.feature_cache and frozen):
        return None
    cache = build_feature_cache(cfg, preprocessors, examples, console, disk=True)
    return cache if cache.names else None


def _report(cache: FeatureCache, cfg: Config, console: Console, disk: bool) -> None:
    """One line when the config has a frozen encoder: which inputs are served from cached features."""
    if not any(cfg.encoder_of(n).freeze_epochs == -1 for n in cfg.input_names()):
        return
    parts = [f"{escape(n)} (disk: {s.hits} read, {s.misses} computed)" if disk else escape(n)
             for n, s in cache.stores.items()]
    shown = ", ".join(parts) if parts else "none (no frozen pretrained encoder)"
    console.print(f"Frozen-feature cache: {len(parts)} input(s) served from cached features: {shown}")
