"""lm_prompt: a text column the language model reads as its own tokens. The answer here depends on the
prompt alone ("say the colour" / "say the animal"), so a model that learns it reads the prompt; prompts
of different lengths in one batch write what each writes alone (left-aligned prefix); a pretrained LM's
prompt tokens are its own tokenizer's and the saved folder rebuilds it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

import omnifuse
from omnifuse.data.collate import collate
from omnifuse.generation.model import GenerationModel, left_align, positions
from omnifuse.generation.prompt import PromptEncoder, PromptPreprocessor
from omnifuse.tasks.generation import IGNORE

from .conftest import make_table
from .test_generation_pretrained_lm import _tiny_lm

ASK = {"colour": "say the colour please", "animal": "now say the animal"}


def _asked(folder: Path, n: int, seed: int) -> pd.DataFrame:
    frame = make_table(folder, n, seed)
    kinds = ["colour" if i % 2 else "animal" for i in range(n)]
    frame["question"] = [ASK[k] for k in kinds]
    frame["answer"] = [frame[k].iloc[i] if k == "colour" else "an animal" for i, k in enumerate(kinds)]
    return frame


def _config(lm: str, epochs: int) -> str:
    return f"""
label: {{column: answer, task: generation}}
columns:
  photo: {{type: image, encoder: {{name: small_cnn, size: 16, channels: 1, widths: [8, 16]}}}}
  question: {{type: text, encoder: {{name: lm_prompt, max_tokens: 8}}}}
  note: {{type: ignore}}
  animal: {{type: ignore}}
  sound: {{type: ignore}}
  weight: {{type: ignore}}
  colour: {{type: ignore}}
generation: {{lm: {lm}, hidden_size: 32, layers: 1, heads: 2, prefix_tokens: 1, max_new_tokens: 4}}
training: {{epochs: {epochs}, batch_size: 16, lr: 0.01, modality_dropout: 0.0, ema_decay: 0}}
"""


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("prompts")
    _asked(folder, 48, 0).to_csv(folder / "train.csv", index=False)
    _asked(folder, 12, 1).to_csv(folder / "test.csv", index=False)
    _tiny_lm(folder / "lm")
    return folder


@pytest.fixture(scope="module")
def tiny(table: Path) -> Path:
    (table / "tiny.yaml").write_text(_config("tiny_decoder", 25))
    omnifuse.train(table / "tiny.yaml", table / "train.csv", valid=table / "test.csv", out=table / "tiny",
                   progress=False)
    return table / "tiny"


def test_tiny_decoder_learns_an_answer_that_only_the_prompt_gives(table: Path, tiny: Path) -> None:
    predictor = omnifuse.load(tiny)
    test = pd.read_csv(table / "test.csv")
    written = predictor.generate(test, base_dir=table)
    animal_rows = [w for w, q in zip(written, test["question"], strict=True) if q == ASK["animal"]]
    colour_rows = [w for w, q in zip(written, test["question"], strict=True) if q == ASK["colour"]]
    assert animal_rows and all(w == "an animal" for w in animal_rows)
    assert colour_rows and all(w in ("red", "blue") for w in colour_rows)
    one_by_one = [predictor.generate(test.iloc[[i]], base_dir=table)[0] for i in range(len(test))]
    assert one_by_one == written  # prompts of 4 and 5 words in one batch: left-aligned prefixes


def test_a_pretrained_lm_reads_the_prompt_in_its_own_embeddings(table: Path) -> None:
    (table / "hf.yaml").write_text(_config(str(table / "lm"), 1))
    omnifuse.train(table / "hf.yaml", table / "train.csv", out=table / "hf", progress=False)
    predictor = omnifuse.load(table / "hf")
    pre = predictor.preprocessors["question"]
    assert isinstance(pre, PromptPreprocessor) and pre.pretrained
    assert (table / "hf/assets/question/preprocessor/tokenizer.json").is_file()
    model = predictor.model
    assert isinstance(model, GenerationModel) and model.prompt_inputs == ["question"]
    encoder = model.encoders["question"]
    assert isinstance(encoder, PromptEncoder) and not list(encoder.parameters())  # the LM's table, shared
    assert encoder._shared[0] is model.lm.get_input_embeddings()
    ids = pre("now say the animal")["input_ids"].tolist()
    assert ids == pre.tokenizer("now say the animal", add_special_tokens=False)["input_ids"]
    test = pd.read_csv(table / "test.csv")
    sampled = {"temperature": 1.0, "seed": 0}  # one epoch on a random LM: greedy mostly ends at once
    again = omnifuse.load(table / "hf").generate(test, base_dir=table, **sampled)
    assert any(again) and again == predictor.generate(test, base_dir=table, **sampled)


def test_the_prompt_is_never_scored(table: Path, tiny: Path) -> None:
    predictor = omnifuse.load(tiny)
    rows = pd.read_csv(table / "test.csv").head(2)
    batch = collate(predictor.prepare(rows, table, True))
    targets = torch.stack([predictor.task.encode(a) for a in rows["answer"]])  # (B, L)
    with torch.no_grad():
        outputs = predictor.model(batch.inputs, batch.presence, targets)  # (B, 3)
    answer_tokens = (targets != IGNORE).sum(dim=1).float()
    assert torch.equal(outputs[:, 1], answer_tokens)  # only the answer's tokens (and its end token) count


def test_left_align_moves_masked_positions_first_and_positions_count_the_real_ones() -> None:
    embeddings = torch.arange(5.0).view(1, 5, 1)  # (1, 5, 1)
    mask = torch.tensor([[True, False, True, False, True]])
    aligned, aligned_mask = left_align(embeddings, mask)
    assert aligned.view(-1).tolist() == [1.0, 3.0, 0.0, 2.0, 4.0]
    assert aligned_mask.tolist() == [[False, False, True, True, True]]
    assert positions(aligned_mask).tolist() == [[0, 0, 0, 1, 2]]


def test_init_config_writes_the_prompt_column_as_lm_prompt(table: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from omnifuse.cli import app
    from omnifuse.config.sections import Config

    out = tmp_path / "c.yaml"
    result = CliRunner().invoke(app, ["init-config", "--train", str(table / "train.csv"), "--task",
                                      "generation", "--label", "answer", "--columns", "photo",
                                      "--prompt-column", "question", "--out", str(out)])
    assert result.exit_code == 0, result.output
    config = Config.from_yaml(out)
    assert config.encoder_of("question").name == "lm_prompt" and config.columns["question"].type == "text"
    assert config.columns["note"].type == "ignore"  # not in --columns
    refused = CliRunner().invoke(app, ["init-config", "--train", str(table / "train.csv"), "--label",
                                       "answer", "--prompt-column", "question", "--out", str(tmp_path / "d")])
    assert refused.exit_code == 2 and "--task generation" in refused.output


def test_streamed_pieces_join_into_the_written_text_and_stop_strings_end_it(table: Path, tiny: Path) -> None:
    import threading

    predictor = omnifuse.load(tiny)
    test = pd.read_csv(table / "test.csv")
    for i in range(4):
        row = test.iloc[i].to_dict()
        whole = predictor.generate(row, base_dir=table)
        pieces = list(predictor.generate(row, base_dir=table, stream=True))
        assert "".join(pieces) == whole and len(pieces) == len(whole.split())
    animal = next(i for i, q in enumerate(test["question"]) if q == ASK["animal"])
    row = test.iloc[animal].to_dict()  # writes "an animal"
    assert predictor.generate(row, base_dir=table, stop=["ani"]) == "an "
    assert "".join(predictor.generate(row, base_dir=table, stop=["ani"], stream=True)) == "an "
    before = threading.active_count()
    stream = predictor.generate(row, base_dir=table, stream=True)
    next(stream)
    stream.close()  # a consumer that leaves early stops the writing thread
    assert threading.active_count() == before
    with pytest.raises(omnifuse.errors.DataError, match="one row"):
        predictor.generate(test.head(2), base_dir=table, stream=True)


def test_sequence_accuracy_is_the_share_that_greedy_decoding_writes_exactly(table: Path, tiny: Path) -> None:
    predictor = omnifuse.load(tiny)
    rows = pd.read_csv(table / "test.csv")
    rows.loc[::3, "answer"] = "a photo"  # some rows the model cannot get right
    batch = collate(predictor.prepare(rows, table, True))
    targets = torch.stack([predictor.task.encode(a) for a in rows["answer"]])  # (B, L)
    with torch.no_grad():
        outputs = predictor.model(batch.inputs, batch.presence, targets)  # (B, 3)
    written = predictor.generate(rows, base_dir=table)
    exact = sum(w == a for w, a in zip(written, rows["answer"], strict=True)) / len(rows)
    assert 0 < exact < 1
    assert predictor.task.metrics(outputs, targets)["sequence_accuracy"] == pytest.approx(exact)


def test_the_resampler_projector_trains_saves_and_writes(table: Path, tmp_path: Path) -> None:
    text = _config("tiny_decoder", 2).replace("prefix_tokens: 1", "prefix_tokens: 3, projector: resampler")
    (tmp_path / "r.yaml").write_text(text)
    omnifuse.train(tmp_path / "r.yaml", table / "train.csv", out=tmp_path / "m", progress=False)
    predictor = omnifuse.load(tmp_path / "m")
    assert predictor.config.generation.projector == "resampler"
    test = pd.read_csv(table / "test.csv").head(4)
    written = predictor.generate(test, base_dir=table)
    assert written == [predictor.generate(test.iloc[[i]], base_dir=table)[0] for i in range(4)]
