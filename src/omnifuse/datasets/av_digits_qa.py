"""AV-Digits QA: questions and short answers about a handwritten digit and a spoken one, for text generation.

Each row pairs a real handwritten digit (scikit-learn ``load_digits``) with a spoken digit word (Debian
``espeak-ng``), degraded as in :mod:`omnifuse.datasets.av_digits`, and asks one of four questions:

=============  =======================================  ==========================================
type           question                                 answer
=============  =======================================  ==========================================
``written``    What digit is written?                   ``3`` (the picture's digit, a numeral)
``spoken``     What number does the voice say?          ``7`` (the voice's digit, a numeral)
``agree``      Do the picture and the voice agree?      ``yes`` / ``no``
``describe``   Describe the picture and the sound.      ``A handwritten 3; the voice says seven.``
=============  =======================================  ==========================================

A share ``agree_share`` of the pairs say the digit they show; the others say another digit, so on those a
written or spoken question can only be answered from its own modality, and ``agree`` always needs both.
Answers come from one template per type, so exact match is a fair metric. The test split is spoken by an
accent never heard in train or valid (the AV-Digits voices).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from omnifuse.datasets._common import build_atomically, progress_bar, split_sizes, write_csvs
from omnifuse.datasets.av_digits import (
    DIGIT_WORDS,
    ClipKey,
    check_params,
    load_digit_images,
    plan_clips,
    require_espeak,
    split_indices,
    split_voices,
    synthesize_all,
    write_pair,
)
from omnifuse.errors import OptionError

QUESTION_TYPES = ("written", "spoken", "agree", "describe")
QUESTIONS = {
    "written": "What digit is written?",
    "spoken": "What number does the voice say?",
    "agree": "Do the picture and the voice agree?",
    "describe": "Describe the picture and the sound.",
}
# LLaVA-style placeholders where a model puts the picture's and the clip's features.
PLACEHOLDERS = "<image>\n<audio>\n"
COLUMNS = ("image", "audio", "question", "answer", "question_type", "written_digit", "spoken_digit")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class QARow:
    """One planned row: which digit picture, which spoken clip and which question.

    Attributes:
        source: the picture's row in ``load_digits``.
        written: the picture's digit. spoken: the digit the voice says (``clip[3]``).
        question_type: one of ``QUESTION_TYPES``. clip: the (voice, speed, pitch, digit) clip spoken.
    """

    source: int
    written: int
    spoken: int
    question_type: str
    clip: ClipKey


def answer_for(question_type: str, written: int, spoken: int) -> str:
    """The one right answer to a question of ``question_type`` about a pair of digits.

    Raises:
        OptionError: ``question_type`` is not one of ``QUESTION_TYPES``.
    """
    if question_type == "written":
        return str(written)
    if question_type == "spoken":
        return str(spoken)
    if question_type == "agree":
        return "yes" if written == spoken else "no"
    if question_type == "describe":
        return f"A handwritten {written}; the voice says {DIGIT_WORDS[spoken]}."
    raise OptionError(
        f"question_type={question_type!r} is unknown; choose one of {', '.join(QUESTION_TYPES)}"
    )


def build_av_digits_qa(
    out_dir: Path,
    *,
    n_train: int = 600,
    n_valid: int = 150,
    n_test: int = 300,
    seed: int = 0,
    progress: bool = True,
    agree_share: float = 0.5,
    question_types: Sequence[str] = QUESTION_TYPES,
    pixel_drop: float = 0.75,
    snr_db: float = -12.0,
    voices: tuple[Sequence[str], Sequence[str], Sequence[str]] | None = None,
) -> Path:
    """Build the AV-Digits QA table (digit picture + spoken digit, a question, its answer) in ``out_dir``.

    Writes ``img/<split>_<i>.png`` (28x28 grayscale), ``audio/<split>_<i>.wav`` (16 kHz mono, 16-bit),
    ``train.csv`` / ``valid.csv`` / ``test.csv`` with the columns ``COLUMNS`` (paths relative to ``out_dir``),
    the same rows in LLaVA format in ``<split>_conversations.jsonl`` (see :func:`conversation`) and a
    ``BUILD.json`` marker. A second call with the same arguments returns at once.

    Args:
        out_dir: folder to create (built in a temporary sibling, then renamed).
        n_train, n_valid, n_test: rows per split, one question each; pictures are disjoint across splits.
        seed: seed of every random choice; the same seed gives byte-identical tables.
        progress: show a rich progress bar.
        agree_share: fraction of the pairs whose voice says the written digit: ``round(n * agree_share)``
            of each split's ``n`` rows, and the same share, give or take one row, of each question type.
        question_types: the question types asked, in equal shares (give or take one row per split).
        pixel_drop, snr_db: the degradation of pictures and clips, as in ``build_av_digits`` (the same
            defaults, so ``written`` and ``spoken`` are as hard as AV-Digits' image-only and audio-only).
        voices: (train, valid, test) espeak-ng voice names; default: the AV-Digits voices per split.

    Returns:
        ``out_dir``, absolute.

    Raises:
        SetupError: ``espeak-ng`` is not installed.
        OptionError: the splits ask for more than the 1797 digit images, or a parameter is out of range.
    """
    sizes = split_sizes(n_train, n_valid, n_test)
    check_params(sizes, pixel_drop)
    types = check_qa_params(agree_share, question_types)
    by_split = split_voices(voices)
    espeak = require_espeak()
    params: dict[str, Any] = {
        "builder": "av_digits_qa",
        "format": FORMAT_VERSION,
        **{f"n_{k}": v for k, v in sizes.items()},
        "seed": seed,
        "agree_share": agree_share,
        "question_types": list(types),
        "voices": [list(v) for v in by_split.values()],
        "pixel_drop": pixel_drop,
        "snr_db": snr_db,
    }

    def fill(folder: Path) -> None:
        images, labels = load_digit_images()
        plans = plan_qa(labels, sizes, seed, agree_share, types, by_split)
        _write_all(folder, images, plans, seed, (pixel_drop, snr_db), espeak, progress)

    return build_atomically(out_dir, params, fill)


def check_qa_params(agree_share: float, question_types: Sequence[str]) -> tuple[str, ...]:
    """Check the QA options; return the question types as a tuple.

    Raises:
        OptionError: ``agree_share`` is outside [0, 1], or ``question_types`` is empty, repeats a type or
            names an unknown one.
    """
    if not 0.0 <= agree_share <= 1.0:
        raise OptionError(f"agree_share={agree_share} must be in [0, 1]; 0.5 makes half the pairs agree")
    types = tuple(question_types)
    unknown = [t for t in types if t not in QUESTION_TYPES]
    if not types or unknown or len(set(types)) != len(types):
        raise OptionError(
            f"question_types={list(types)}: give one or more distinct types of {', '.join(QUESTION_TYPES)}"
            + (f" ({', '.join(map(repr, unknown))} unknown)" if unknown else "")
        )
    return types


def plan_qa(
    labels: np.ndarray,
    sizes: dict[str, int],
    seed: int,
    agree_share: float,
    question_types: tuple[str, ...],
    voices: dict[str, tuple[str, ...]],
) -> dict[str, list[QARow]]:
    """Plan every split's rows: disjoint class-balanced pictures, a question each, the spoken clip.

    Args:
        labels: the digit of every ``load_digits`` picture, (N,).
        sizes: rows per split. voices: the espeak-ng voices per split.
        seed, agree_share, question_types: as in :func:`build_av_digits_qa`.
    """
    indices = split_indices(labels, sizes, np.random.default_rng([seed, 0]))
    return {
        split: _plan_split(
            idx, labels, agree_share, question_types, voices[split], np.random.default_rng([seed, 1, s])
        )
        for s, (split, idx) in enumerate(indices.items())
    }


def _plan_split(
    idx: np.ndarray,
    labels: np.ndarray,
    agree_share: float,
    question_types: tuple[str, ...],
    voices: tuple[str, ...],
    rng: np.random.Generator,
) -> list[QARow]:
    """Plan one split: types in equal shares, each type's agreeing pairs spread evenly, rows shuffled."""
    n = len(idx)
    type_of = np.arange(n) % len(question_types)  # idx is shuffled, so types fall on random pictures
    agree = np.empty(n, dtype=bool)
    agree[np.argsort(type_of, kind="stable")] = spread(n, agree_share)  # each type's rows are one run
    written = labels[idx]
    other = (written + rng.integers(1, 10, size=n)) % 10  # any digit but the written one
    spoken = np.where(agree, written, other)
    clips = plan_clips(spoken, voices, rng)
    return [
        QARow(int(idx[k]), int(written[k]), int(spoken[k]), question_types[type_of[k]], clips[k])
        for k in rng.permutation(n)
    ]


def spread(n: int, share: float) -> np.ndarray:
    """``n`` flags of which ``round(n * share)`` (halves rounded up) are true, spread evenly: every run of
    ``m`` consecutive flags holds ``m * share`` true ones, give or take one."""
    k = np.arange(n + 1)
    steps = np.floor(k * share + 0.5)  # (n + 1,) true flags before position k, rounded
    return np.diff(steps) > 0


def _write_all(
    folder: Path,
    images: np.ndarray,
    plans: dict[str, list[QARow]],
    seed: int,
    degrade: tuple[float, float],
    espeak: str,
    show: bool,
) -> None:
    """Speak every distinct clip once, write each split's files, then the CSVs and conversation files."""
    (folder / "img").mkdir()
    (folder / "audio").mkdir()
    with progress_bar(show) as bar:
        clips = synthesize_all(sorted({row.clip for rows in plans.values() for row in rows}), espeak, bar)
        task = bar.add_task("AV-Digits QA rows", total=sum(len(rows) for rows in plans.values()))
        tables = {}
        for s, (split, rows) in enumerate(plans.items()):
            rng = np.random.default_rng([seed, 2, s])
            records = []
            for i, row in enumerate(rows):
                image_rel, audio_rel = f"img/{split}_{i}.png", f"audio/{split}_{i}.wav"
                write_pair(folder, image_rel, audio_rel, images[row.source], clips[row.clip], *degrade, rng)
                records.append(_record(row, image_rel, audio_rel))
                bar.advance(task)
            tables[split] = pd.DataFrame(records, columns=list(COLUMNS))
    write_csvs(folder, tables)
    write_conversations(folder, tables)


def _record(row: QARow, image_rel: str, audio_rel: str) -> dict[str, Any]:
    """The CSV row of a planned row whose files are at ``image_rel`` and ``audio_rel``."""
    return {
        "image": image_rel,
        "audio": audio_rel,
        "question": QUESTIONS[row.question_type],
        "answer": answer_for(row.question_type, row.written, row.spoken),
        "question_type": row.question_type,
        "written_digit": row.written,
        "spoken_digit": row.spoken,
    }


def conversation(row_id: str, image: str, audio: str, question: str, answer: str) -> dict[str, Any]:
    """One row in LLaVA's conversation format: the placeholders and the question, then the answer.

    Returns:
        ``{"id", "image", "audio", "conversations": [{"from": "human", "value": "<image>\\n<audio>\\n" +
        question}, {"from": "gpt", "value": answer}]}``.
    """
    return {
        "id": row_id,
        "image": image,
        "audio": audio,
        "conversations": [
            {"from": "human", "value": PLACEHOLDERS + question},
            {"from": "gpt", "value": answer},
        ],
    }


def write_conversations(folder: Path, tables: dict[str, pd.DataFrame]) -> None:
    """Write ``<split>_conversations.jsonl``: one LLaVA conversation per CSV row, in the same order."""
    for split, table in tables.items():
        columns = (table[c].astype(str) for c in ("image", "audio", "question", "answer"))
        lines = [
            json.dumps(conversation(f"{split}_{i}", *values), ensure_ascii=False) + "\n"
            for i, values in enumerate(zip(*columns, strict=True))
        ]
        (folder / f"{split}_conversations.jsonl").write_text("".join(lines))
