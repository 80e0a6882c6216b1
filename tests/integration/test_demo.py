"""`omnifuse demo --quick` end to end on the real bundled data (handwriting + speech, Fashion-MNIST)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import omnifuse
from omnifuse.cli import app

runner = CliRunner()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian espeak-ng (make setup does it)")
def test_av_digits_quick_demo_trains_compares_and_predicts(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--quick", "--out", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    for run in ("audio-only", "image-only", "fused (late)"):
        assert run in output
    assert "Fusion wins" in output or "Fusion does NOT win" in output
    assert "omnifuse predict --model" in output
    fused = tmp_path / "models" / "av_digits" / "fused"
    predictor = omnifuse.load(fused)
    data = tmp_path / "data" / "av_digits_quick"
    preds = predictor.predict(data / "test.csv")
    assert len(preds) == 30 and set(preds) <= set(range(10))


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="needs Debian dataset-fashion-mnist (make setup installs it)")
def test_fashion_quick_demo(tmp_path: Path) -> None:
    """Fine-tunes the real packaged MiniLM and EfficientNet-Lite0 weights through the whole path (~30 s)."""
    result = runner.invoke(app, ["demo", "--dataset", "fashion", "--quick", "--out", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "models" / "fashion" / "fused" / "model.safetensors").exists()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian espeak-ng (make setup does it)")
def test_av_digits_qa_quick_demo_trains_on_conversations_and_chats(tmp_path: Path) -> None:
    from omnifuse.workflows.demo_chat import run_chat_demo

    scores = run_chat_demo(tmp_path, progress=False, quick=True)
    assert set(scores) == {"all", "written", "spoken", "agree", "describe"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    predictor = omnifuse.load(tmp_path / "models" / "av_digits_qa")
    assert predictor.config.encoder_of("prompt").name == "lm_prompt"  # the conversations' history
    result = runner.invoke(app, ["demo", "--dataset", "av_digits_qa", "--quick", "--out", str(tmp_path),
                                 "-q"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "classical baseline" in output and "Predictor.chat on test rows" in output
