"""Predictor: a loaded model that predicts from DataFrames, lists of dicts or one dict."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from omnifuse.artifacts.folder import LoadedModel, load_model
from omnifuse.config.sections import Config
from omnifuse.data.bucketing import longest_first
from omnifuse.data.collate import Example, batches
from omnifuse.data.dataset import examples_from_records, input_specs, make_example
from omnifuse.data.io import real_path
from omnifuse.data.preprocess.base import Preprocessor
from omnifuse.data.quality import apply_bad_row_policy
from omnifuse.errors import DataError
from omnifuse.inference.rows import Rows, check_records, outside_paths_allowed, to_records
from omnifuse.model import MultimodalModel
from omnifuse.ood.rows import flag_columns
from omnifuse.ood.scoring import has_scores, scored_forward
from omnifuse.tasks.base import Task
from omnifuse.training.batched_forward import run_model

if TYPE_CHECKING:
    from omnifuse.export.backend import OnnxBackend

class Predictor:
    """Predicts with a trained model; built by ``omnifuse.load(dir)`` or returned by ``omnifuse.train``.

    Args:
        model: the trained model (put in eval mode).
        config: its configuration.
        preprocessors: fitted preprocessors, one per model input.
        task: the task (classes, decoding).
        folder: the model folder it was loaded from, if any.
        batch_size: rows per forward pass.
    """

    onnx_backend: OnnxBackend | None = None
    """Set by ``omnifuse.load(dir, backend="onnx")``: forward passes then run on onnxruntime."""

    def __init__(
        self,
        model: MultimodalModel,
        config: Config,
        preprocessors: dict[str, Preprocessor],
        task: Task,
        folder: Path | None = None,
        batch_size: int = 64,
    ) -> None:
        self.model = model.eval()
        self.config, self.preprocessors, self.task, self.folder = config, preprocessors, task, folder
        self.batch_size = batch_size
        self.device = next(model.parameters()).device
        self._specs = input_specs(config)
        self._wanted = list(config.table_columns())

    @classmethod
    def from_loaded(cls, loaded: LoadedModel) -> Predictor:
        """Wraps a LoadedModel."""
        return cls(loaded.model, loaded.config, loaded.preprocessors, loaded.task, loaded.folder)

    @property
    def classes(self) -> list[Any]:
        """Class labels in the order of ``predict_proba`` columns ([] for regression)."""
        return self.task.classes

    def logits(self, rows: Rows | str | Path, base_dir: Path | None = None, num_workers: int = 0) -> Tensor:
        """Raw model outputs (N, C), in input order.

        Args:
            rows: a DataFrame, a list of row dicts, one dict, or the path of a table.
            base_dir: folder relative file paths are resolved against.
            num_workers: > 0 decodes and preprocesses rows lazily in this many DataLoader worker
                processes while the model runs (large tables of files); 0 preprocesses in this process.

        Raises:
            DataError: a contrastive model (it embeds; it does not predict), a negative ``num_workers``, or
                a missing column. BadRowError: see ``prepare``.
        """
        self._check_predictive()
        if num_workers < 0:
            raise DataError(f"num_workers must be 0 or more, got {num_workers}; pass 2 for two worker "
                            "processes")
        if num_workers > 0:
            from omnifuse.data.lazy import predict_lazily

            return predict_lazily(self, rows, base_dir, num_workers)
        if isinstance(rows, dict):
            return self._one_row(rows, base_dir)
        return self._run(rows, base_dir, embed=False)

    def predict(self, rows: Rows | str | Path, base_dir: Path | None = None, num_workers: int = 0) -> Any:
        """Predictions in the label's own values: a list, or one value when ``rows`` is one dict.

        ``num_workers``: see ``logits``.
        """
        if self.task.name == "generation":  # it writes text
            return self.generate(rows, base_dir)
        predictions = self.task.decode(self.logits(rows, base_dir, num_workers))
        return predictions[0] if isinstance(rows, dict) else predictions

    def generate(
        self, rows: Rows | str | Path, base_dir: Path | None = None, *, max_new_tokens: int | None = None,
        num_beams: int | None = None, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
        repetition_penalty: float = 1.0, seed: int | None = None, stop: Sequence[str] = (),
        stream: bool = False,
    ) -> Any:
        """The text a generation model writes for each row: a list, or one string for one dict row.

        Greedy by default; ``temperature > 0`` samples (``top_k``, ``top_p``; ``seed`` makes it
        reproducible); ``num_beams > 1`` is beam search. ``max_new_tokens`` and ``num_beams`` default to
        the config's ``generation`` section. ``stop``: strings the text ends before. ``stream=True`` (one
        row, no beams): an iterator of the text's pieces as the tokens are written.

        Raises:
            DataError: not a generation model, a missing column, or a stream of several rows or beams.
            BadRowError: see ``prepare``.
        """
        from omnifuse.generation.model import Decoding
        from omnifuse.generation.stream import cut_at_stop, until_stop

        section = self.config.generation
        if self.task.name != "generation" or section is None:
            raise DataError(f"generate is for generation models; this one is a {self.task.name} model: "
                            "use predict")
        decoding = Decoding(max_new_tokens or section.max_new_tokens, num_beams or section.num_beams,
                            temperature, top_k, top_p, repetition_penalty, seed)
        examples = self.prepare(rows, base_dir, purpose="generate")
        if stream:
            if len(examples) != 1 or decoding.num_beams > 1:
                raise DataError("stream=True writes one row with greedy decoding or sampling; give one row "
                                "and num_beams=1 (or leave stream out)")
            return until_stop(self.stream_example(examples[0], decoding), stop)
        texts = [cut_at_stop(t, stop) for t in self.generate_examples(examples, decoding)]
        return texts[0] if isinstance(rows, dict) else texts

    def stream_example(self, example: Example, decoding: Any) -> Iterator[str]:
        """The text pieces written for one prepared example, as its tokens come (see ``generate``)."""
        from omnifuse.data.collate import collate
        from omnifuse.generation.model import GenerationModel
        from omnifuse.generation.stream import stream_ids, text_deltas
        from omnifuse.tasks.generation import GenerationTask

        model, task = self.model, self.task
        assert isinstance(model, GenerationModel) and isinstance(task, GenerationTask)
        batch = collate([example]).to(self.device)

        def run(streamer: Any, stopping: Any) -> None:
            model.generate(batch.inputs, batch.presence, decoding, streamer, stopping)

        special = task.special
        return text_deltas(stream_ids(run), task.decode_ids, (special.eos, special.pad))

    def chat(self, messages: Sequence[Mapping[str, Any]], media: Mapping[str, Any] | None = None,
             base_dir: Path | None = None, **decoding: Any) -> Any:
        """The model's answer to a chat: ``messages`` (``{"role", "content"}``, multi-turn, ending with the
        user's) rendered with the LM's chat template into its prompt column, and ``media`` ({column or
        "image" / "audio": path or bytes}). ``decoding``: as ``generate`` (temperature, seed, stop, ...;
        ``stream=True``: an iterator of the answer's pieces).

        Raises:
            DataError: not a generation model with a prompt column (``lm_prompt``), a malformed message,
                an unknown medium. BadRowError: a medium the model needs is missing or unreadable.
        """
        from omnifuse.generation.chat import chat_row

        return self.generate(chat_row(self.config, messages, media or {}), base_dir, **decoding)

    def generate_examples(self, examples: list[Example], decoding: Any = None) -> list[str]:
        """The texts written for prepared examples, in order (``decoding``: a generation.model.Decoding;
        None: the config's defaults, greedy)."""
        from omnifuse.generation.model import Decoding, GenerationModel
        from omnifuse.tasks.generation import GenerationTask

        section, task = self.config.generation, self.task
        assert isinstance(self.model, GenerationModel) and isinstance(task, GenerationTask) and section
        decoding = decoding or Decoding(section.max_new_tokens, section.num_beams)
        decode = task.decode_ids
        texts: list[str] = []
        for batch in batches(examples, self.batch_size):
            batch = batch.to(self.device)
            texts += [decode(ids) for ids in self.model.generate(batch.inputs, batch.presence, decoding)]
        return texts

    def predict_proba(self, rows: Rows | str | Path, base_dir: Path | None = None) -> Any:
        """Class probabilities: a DataFrame with one column per class (a dict for one dict row)."""
        self._check_predictive()
        if not self.task.classes:
            raise DataError(
                "predict_proba is for classification models; this one does regression: use predict"
            )
        probs = self.task.probabilities(self.logits(rows, base_dir)).numpy()
        frame = pd.DataFrame(probs, columns=[str(c) for c in self.task.classes])
        return frame.iloc[0].to_dict() if isinstance(rows, dict) else frame

    def embed(
        self, rows: Rows | str | Path, base_dir: Path | None = None, *, column: str | None = None
    ) -> np.ndarray:
        """Fused representations (N, F) (or (F,) for one dict row); with ``column``, that column's alone.

        Args:
            column: one of ``embedding_columns``; the rows need only that column. On a contrastive model
                (where it is required): the L2-normalised projected embedding (N, D); on other models:
                that column encoder's pooled output.

        Raises:
            DataError: a contrastive model without ``column`` (the message lists the columns), or a column
                that is not an embedding column.
        """
        if column is not None or self.task.name == "contrastive":
            from omnifuse.contrastive.embed import embed_column

            return embed_column(self, rows, column, base_dir)
        out = self._run(rows, base_dir, embed=True).numpy()
        return out[0] if isinstance(rows, dict) else out

    def explain(self, rows: Rows | str | Path, base_dir: Path | None = None) -> pd.DataFrame:
        """Per row: prediction, its probability, and per input the fusion weight and removal delta."""
        from omnifuse.inference.explain import explain

        self._check_predictive()

        return explain(self, rows, base_dir)

    @property
    def embedding_columns(self) -> dict[str, str]:
        """{column: modality} that ``embed(rows, column=...)`` accepts: a contrastive model's towers, or
        every input of another model."""
        from omnifuse.contrastive.embed import embedding_columns

        return embedding_columns(self)

    def _check_predictive(self) -> None:
        if self.task.name == "generation":
            from omnifuse.tasks.generation import NOT_CLASSIFYING

            raise DataError(NOT_CLASSIFYING)
        if self.task.name == "contrastive":
            from omnifuse.tasks.contrastive import NOT_PREDICTIVE

            raise DataError(NOT_PREDICTIVE)

    def prepare(
        self, rows: Rows | str | Path, base_dir: str | Path | None = None, allow_outside: bool | None = None,
        purpose: str = "predict",
    ) -> list[Example]:
        """Checks and preprocesses rows into model-ready examples (no forward pass).

        Args:
            rows: a DataFrame, a list of row dicts, one dict, or the path of a table.
            base_dir: folder relative file paths are resolved against.
            allow_outside: whether file paths may resolve outside ``base_dir``; None: rows built in Python
                with no ``base_dir`` may, tables follow the model's ``data.allow_outside_paths``.
            purpose: what the rows are for, in a bad row's message ("the rows to predict").

        Raises:
            DataError: a column is missing. BadRowError: a row cannot be preprocessed (names row, column,
                value and fix).
        """
        base_dir = None if base_dir is None else Path(base_dir)  # a str folder works too
        records, folder = to_records(rows, base_dir)
        check_records(records, self.config)
        outside = outside_paths_allowed(rows, base_dir) if allow_outside is None else allow_outside
        examples, bad = examples_from_records(
            enumerate(records), self._specs, self.preprocessors, self.config, folder, allow_outside=outside
        )
        apply_bad_row_policy(bad, "error", None, f"the rows to {purpose}")
        return examples

    def run_examples(self, examples: list[Example], embed: bool = False) -> Tensor:
        """Logits (N, C), or fused embeddings (N, F) with ``embed``, for prepared examples, in order.

        Rows whose texts or clips vary in length run longest first, so that each batch pads little (a
        transformer's cost grows with the padded length); the outputs come back in the rows' order.
        """
        ranked, back = self._ranked(examples)
        if self.onnx_backend is not None:
            outputs = self.onnx_backend.run_examples(ranked, self.batch_size, embed)
        else:
            outputs, _, _ = run_model(self.model, batches(ranked, self.batch_size), self.device, embed=embed)
        return outputs if back is None else outputs[back]  # (N, C) back in the rows' order

    def _ranked(self, examples: list[Example]) -> tuple[list[Example], Tensor | None]:
        """The examples longest first (when there is more than one batch) and, for each row, its position
        in that order (None: the order is the rows' own)."""
        order = longest_first(examples) if len(examples) > self.batch_size else None
        if order is None:  # one batch, or rows of equal lengths
            return examples, None
        return [examples[i] for i in order], torch.argsort(torch.tensor(order))

    def run_scored(self, examples: list[Example]) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """Logits (N, C) and, when the model's OOD gate is fitted (``ood``), {input: (N,) score ratio} and
        {input: (N,) presence} of prepared examples, in order, from one forward pass ({} and {} when not,
        or on the ONNX backend)."""
        if self.onnx_backend is not None or not has_scores(self.model):
            return self.run_examples(examples), {}, {}
        ranked, back = self._ranked(examples)
        logits, _, ratios, present, _ = scored_forward(self.model, batches(ranked, self.batch_size),
                                                       self.device)
        if back is None:
            return logits, ratios, present
        return logits[back], {n: r[back] for n, r in ratios.items()}, {n: p[back] for n, p in present.items()}

    def ood_flags(self, rows: Rows | str | Path, base_dir: Path | None = None) -> pd.DataFrame:
        """Per row, for each input with a fitted OOD score: ``ood_score_<input>`` (the score ratio; above 1
        the value is unlike the training data), ``ood_weight_<input>`` (0: fused as missing), ``ood_note``.

        Raises:
            DataError: the model has no fitted OOD scores (``ood.enabled: false``, or a folder saved
                before they existed: re-train to get them).
        """
        self._check_predictive()
        if not has_scores(self.model):
            raise DataError("this model has no OOD scores (ood.enabled was false, or the folder predates "
                            "them); re-train it with `ood: {enabled: true}` to get them")
        _, ratios, present = self.run_scored(self.prepare(rows, base_dir))
        return pd.DataFrame(flag_columns(ratios, present, self.model.gate.drop))  # type: ignore[union-attr]

    def _run(self, rows: Rows | str | Path, base_dir: Path | None, embed: bool) -> Tensor:
        return self.run_examples(self.prepare(rows, base_dir), embed=embed)

    @torch.inference_mode()
    def _one_row(self, row: dict[str, Any], base_dir: Path | None) -> Tensor:
        """Logits (1, C) of one row dict: what ``prepare`` + ``run_examples`` compute, without building
        a records list, a DataLoader-style batch list and a concatenation (the latency path)."""
        if any(name not in row for name in self._wanted):
            check_records([row], self.config)  # raises, naming the missing column
        folder = real_path(base_dir or Path.cwd())  # Path.resolve, in fewer system calls
        outside = outside_paths_allowed(row, base_dir)
        example, problem = make_example(0, row, self._specs, self.preprocessors, self.config, folder, outside)
        if example is None:
            apply_bad_row_policy([problem] if problem else [], "error", None, "the rows to predict")
        assert example is not None, "make_example returns an example or a problem"
        if self.onnx_backend is not None:
            return self.onnx_backend.run_examples([example], 1)  # (1, C)
        if self.model.training:
            self.model.eval()
        device = self.device
        inputs = {n: {k: v.unsqueeze(0).to(device) for k, v in t.items()} for n, t in example.inputs.items()}
        presence = {n: torch.tensor([p], device=device) for n, p in example.presence.items()}  # (1,)
        return self.model(inputs, presence).float().cpu()  # (1, C)

    def warm_up(self) -> None:
        """One forward pass on every input's blank value, so that the first real call does not pay for
        torch's lazy initialisation (allocator, kernels); called by ``load``."""
        inputs = {s.name: self.preprocessors[s.name].blank() for s in self._specs}
        example = Example(index=0, inputs=inputs, presence={name: True for name in inputs})
        try:
            if self.task.name == "generation":  # it writes; one token is enough to warm it up
                from omnifuse.generation.model import Decoding

                self.generate_examples([example], Decoding(max_new_tokens=1))
            else:
                self.run_examples([example])
        except (RuntimeError, ValueError, IndexError):
            pass  # an encoder that cannot take a one-sample blank (e.g. wav2vec2's convolutions): no warm-up


def load(
    folder: str | Path, device: str | None = None, backend: str = "torch", onnx_path: str | Path | None = None
) -> Predictor:
    """Loads a model folder written by ``omnifuse train`` (no network needed).

    Args:
        folder: the model folder.
        device: e.g. "cpu" or "cuda"; default: CUDA when available, else CPU.
        backend: "torch", or "onnx": ``predict``/``predict_proba``/``embed`` run on onnxruntime (CPU) with
            ``onnx_path``, else ``folder/model.onnx``, else a model exported on the fly (with a warning);
            see ``omnifuse.export.attach.attach``.
        onnx_path: the .onnx file for ``backend="onnx"`` (its ``.onnx.json`` sidecar next to it).
    """
    loaded = load_model(folder)
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    loaded.model.to(target)
    predictor = Predictor.from_loaded(loaded)
    if backend != "torch":
        from omnifuse.export.attach import attach  # lazy: it imports the exporter

        attach(predictor, folder, backend, onnx_path)  # warms the session up
        return predictor
    predictor.warm_up()
    return predictor
