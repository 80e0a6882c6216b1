"""A simple baseline for the AV-Digits question-answering table, on the rows a generation model uses.

    python examples/av_digits_qa_baseline.py DIR [--all-labels]

DIR holds ``omnifuse.datasets.build_av_digits_qa(DIR)`` (built when missing); see
``omnifuse.baselines.qa`` for what the baseline does. Prints the test exact match per question type, as
the generation report counts it, to set beside ``omnifuse train`` on the same table (README, "Generation").
"""

from __future__ import annotations

import sys
from pathlib import Path

from omnifuse.baselines.qa import qa_baseline
from omnifuse.datasets import build_av_digits_qa


def main(folder: Path, all_labels: bool) -> None:
    if not (folder / "test.csv").is_file():
        build_av_digits_qa(folder)
    test = qa_baseline(folder, all_labels)
    print(f"test exact match {test['hit'].mean():.3f}")
    for kind, share in test.groupby("question_type")["hit"].mean().items():
        print(f"  {kind}: {share:.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), "--all-labels" in sys.argv[2:])
