"""``omnifuse serve`` through its entry point: startup, the env API key, and graceful shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from omnifuse.cli import app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_then_finishes_in_flight_requests_on_sigterm(
    trained_dir: Path, test_rows: list[dict[str, Any]], await_ready: Callable[..., None]
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OMNIFUSE_API_KEY": "env-key", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-c", "from omnifuse.cli import main; main()", "serve", "--model",
               str(trained_dir), "--port", str(port), "--torch-threads", "1"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        await_ready(url, lambda: process.poll() is None)
        key = {"Authorization": "Bearer env-key"}
        assert httpx.get(f"{url}/v1/model", timeout=10).status_code == 401  # the key came from the env
        answers: list[httpx.Response] = []
        slow = threading.Thread(target=lambda: answers.append(httpx.post(
            f"{url}/v1/predict", json={"rows": test_rows * 12}, headers=key, timeout=60)))
        slow.start()  # 288 rows: decoding and predicting them takes a while
        threading.Event().wait(0.3)
        process.send_signal(signal.SIGTERM)
        slow.join(timeout=30)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal at exit
    finally:
        if process.poll() is None:
            process.kill()
    assert answers and answers[0].status_code == 200, answers
    predictions = answers[0].json()["predictions"]
    assert len(predictions) == 288 and predictions[0]["prediction"] in ("cat", "dog", "owl")
    output = process.stdout.read() if process.stdout else ""
    assert "Serving" in output and "/docs" in output


def test_serve_refuses_bad_limits_cleanly(trained_dir: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--model", str(trained_dir), "--max-batch", "0",
                                      "--timeout-s", "-1"])
    assert result.exit_code != 0
    assert "max_batch must be > 0, got 0" in str(result.exception)
    assert "timeout_s must be > 0, got -1.0" in str(result.exception)
