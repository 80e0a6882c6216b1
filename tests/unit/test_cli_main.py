"""The CLI entry point: user errors give one message and status 2; anything else is reported as a bug."""

from __future__ import annotations

import pytest

from omnifuse import cli
from omnifuse.errors import DataError


def _run(monkeypatch: pytest.MonkeyPatch, error: Exception) -> int:
    def app() -> None:
        raise error

    monkeypatch.setattr(cli, "app", app)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return int(exit_info.value.code or 0)


def test_a_user_error_is_one_line_without_a_traceback(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code = _run(monkeypatch, DataError("column 'x' is missing; add it"))
    out = capsys.readouterr()
    assert code == 2 and "column 'x' is missing; add it" in out.out + out.err
    assert "Traceback" not in out.out + out.err and "bug" not in out.out + out.err


def test_an_unexpected_error_shows_its_traceback_and_says_it_is_a_bug(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code = _run(monkeypatch, RuntimeError("index out of range in the fusion"))
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback (most recent call last)" in err
    assert "RuntimeError: index out of range in the fusion" in err
    assert err.rstrip().endswith(cli.BUG_LINE) and "this is a bug in omnifuse" in cli.BUG_LINE


def test_under_ddp_a_rank_names_itself_and_a_stopped_peer_is_not_called_a_bug(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from omnifuse.training import distributed

    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "global_rank", lambda: 1)
    code = _run(monkeypatch, DataError("column 'score' row 150: 'oops' is not a number"))
    out = capsys.readouterr()
    assert code == 2 and "rank 1: error: column 'score' row 150" in " ".join((out.out + out.err).split())
    monkeypatch.setattr(distributed, "global_rank", lambda: 0)
    code = _run(monkeypatch, RuntimeError("[gloo/pair.cc:553] Connection closed by peer [127.0.0.1]:62178"))
    err = capsys.readouterr().err
    assert code == 1 and err.strip() == cli.PEER_LINE  # no transport traceback, no "bug" line
    monkeypatch.setattr(distributed, "world_size", lambda: 1)  # the same text without DDP: a bug
    assert _run(monkeypatch, RuntimeError("Connection closed by peer")) == 1
    assert capsys.readouterr().err.rstrip().endswith(cli.BUG_LINE)


def test_a_rank_stopped_by_another_ranks_bug_exits_like_a_bug_without_its_own_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from omnifuse.errors import PeerFailedError

    message = "DDP rank 1 failed, so every rank stopped: ValueError: bad value"
    assert _run(monkeypatch, PeerFailedError(message, bug=True)) == 1
    out = capsys.readouterr()
    assert f"error: {message}" in " ".join((out.out + out.err).split()) and "Traceback" not in out.err
    assert _run(monkeypatch, PeerFailedError("DDP rank 1 failed, so every rank stopped: row 3: bad")) == 2
