"""Bad cells met through the real preprocessors: an error before training, or skipped and listed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from omnifuse.cli import app
from omnifuse.errors import BadRowError, ConfigError

runner = CliRunner()


def _broken_table(table_dir: Path) -> Path:
    frame = pd.read_csv(table_dir / "train.csv").astype({"weight": object})
    wav = (table_dir / "wav" / "0_0.wav").read_bytes()
    (table_dir / "wav" / "truncated.wav").write_bytes(wav[:30])  # cut inside the RIFF header
    png = (table_dir / "img" / "0_0.png").read_bytes()
    (table_dir / "img" / "truncated.png").write_bytes(png[: len(png) // 2])
    frame.loc[4, "sound"] = "wav/truncated.wav"
    frame.loc[8, "photo"] = "img/truncated.png"
    frame.loc[11, "note"] = "   "
    frame.loc[13, "weight"] = "heavy"
    frame.to_csv(table_dir / "broken_all.csv", index=False)
    return table_dir / "broken_all.csv"


def test_first_bad_row_stops_training_with_the_fix(table_dir: Path, tmp_path: Path) -> None:
    import omnifuse

    table = _broken_table(table_dir)
    with pytest.raises(BadRowError, match=r"column 'sound' row 4: .*truncated\.wav.*\(3 more bad row"):
        omnifuse.train(table_dir / "config.yaml", train=table, out=tmp_path / "m", progress=False)
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_skip_lists_every_bad_row_with_its_reason(table_dir: Path, tmp_path: Path) -> None:
    table = _broken_table(table_dir)
    config = tmp_path / "config.yaml"
    config.write_text((table_dir / "config.yaml").read_text() + "data: {on_bad_row: skip}\n")
    result = runner.invoke(app, ["train", "--config", str(config), "--train", str(table), "--out",
                                 str(tmp_path / "m"), "-q"])
    assert result.exit_code == 0, result.output
    assert "Skipped 4 bad row(s)" in result.output.replace("\n", " ")
    bad = pd.read_csv(tmp_path / "m" / "bad_rows.csv").set_index("row")
    assert bad.loc[4, "column"] == "sound" and "truncated.wav" in bad.loc[4, "reason"]
    assert bad.loc[8, "column"] == "photo" and "truncated.png" in bad.loc[8, "reason"]
    assert bad.loc[11, "column"] == "note" and "empty" in bad.loc[11, "reason"]
    assert bad.loc[13, "column"] == "weight" and bad.loc[13, "value"] == "heavy"
    assert (tmp_path / "m" / "model.safetensors").exists()


def test_unknown_config_key_suggests_the_right_one(table_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text((table_dir / "config.yaml").read_text().replace("patience: 3", "patiense: 3"))
    result = runner.invoke(app, ["train", "--config", str(config), "--train", str(table_dir / "train.csv"),
                                 "--out", str(tmp_path / "m")])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert "training.patiense: unknown key. Did you mean 'patience'?" in str(result.exception)


def test_files_broken_after_validation_never_kill_the_run(table_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file is decoded once, before training; nothing is read during the epochs, so a file replaced
    or corrupted after that point cannot stop the run."""
    import shutil

    import omnifuse
    from omnifuse.training.loop import Trainer

    folder = tmp_path / "copy"
    shutil.copytree(table_dir, folder)
    original_fit = Trainer.fit

    def corrupt_then_fit(self: Trainer, *args: object, **kwargs: object) -> object:
        for path in [*(folder / "img").glob("*.png"), *(folder / "wav").glob("*.wav")]:
            path.write_bytes(b"garbage")  # every media file is now undecodable
        return original_fit(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Trainer, "fit", corrupt_then_fit)
    omnifuse.train(folder / "config.yaml", train=folder / "train.csv", out=tmp_path / "m", progress=False)
    assert (tmp_path / "m" / "model.safetensors").exists()
    assert not (tmp_path / "m" / "bad_rows.csv").exists()
