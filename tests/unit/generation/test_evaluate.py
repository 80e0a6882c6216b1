"""The references generated texts are scored against: the table's texts, not the vocabulary's spelling."""

from __future__ import annotations

from omnifuse.data.collate import Example
from omnifuse.generation.evaluate import references
from omnifuse.tasks.generation import GenerationTask


def test_references_are_the_label_texts_when_the_table_is_given() -> None:
    task = GenerationTask(max_answer_tokens=8)
    task.fit(["a red square"])
    texts = ["a red square", "a green zebra"]  # 'green', 'zebra': never seen in training
    examples = [Example(i, {}, {}, task.encode(t)) for i, t in enumerate(texts)]
    assert references(task, examples, dict(enumerate(texts))) == texts
    assert references(task, examples) == ["a red square", "a <unk> <unk>"]  # without the table
