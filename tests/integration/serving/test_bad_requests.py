"""Every class of bad request gets a 4xx with the contract's JSON error, never a 500."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((height, width), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _error(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.json()["error"]
    assert set(error) == {"message", "row", "column", "fix"} and error["message"]
    return dict(error)


@pytest.mark.parametrize(("body", "status", "message"), [
    (b"{not json", 400, "not valid JSON"),
    (b"\xff\xfe garbage", 400, "not valid JSON"),
    (b"[1, 2]", 422, 'needs a "rows" list'),
    (b'{"row": []}', 422, 'needs a "rows" list'),
    (b'{"rows": {"note": "x"}}', 422, '"rows" must be a list'),
    (b'{"rows": []}', 422, '"rows" is empty'),
    (b'{"rows": ["just text"]}', 422, "row 0 must be an object"),
])
def test_malformed_bodies(server_url: str, body: bytes, status: int, message: str) -> None:
    headers = {"content-type": "application/json"}
    answer = httpx.post(f"{server_url}/v1/predict", content=body, headers=headers)
    assert message in _error(answer, status)["message"]


def test_missing_column_is_422_naming_the_column(server_url: str, test_rows: list[dict[str, Any]]) -> None:
    row = {k: v for k, v in test_rows[0].items() if k != "sound"}
    error = _error(httpx.post(f"{server_url}/v1/predict", json={"rows": [test_rows[0], row]}), 422)
    assert error["row"] == 1 and error["column"] == "sound" and "'sound'" in error["message"]


@pytest.mark.parametrize(("column", "value", "message"), [
    ("note", {"a": 1}, "expected a string, got an object"),
    ("weight", [1, 2], "expected a number, got a list"),
    ("weight", True, "expected a number, got a boolean"),
    ("weight", "heavy", "'heavy' is not a number"),
    ("colour", ["red"], "expected a string or number, got a list"),
    ("photo", 42, "expected a string"),
])
def test_wrong_types_are_400_naming_row_and_column(server_url: str, test_rows: list[dict[str, Any]],
                                                    column: str, value: Any, message: str) -> None:
    rows = [test_rows[0], {**test_rows[1], column: value}]
    error = _error(httpx.post(f"{server_url}/v1/predict", json={"rows": rows}), 400)
    assert error["row"] == 1 and error["column"] == column and message in error["message"]


@pytest.mark.parametrize(("column", "value", "message"), [
    ("photo", "data:image/png;base64,@@@@", "cannot decode the base64 data"),
    ("photo", "data:image/png,rawtext", "is not a base64 data: URL"),
    ("photo", "QUJD", "cannot decode '<3 bytes>' (not a PNG/JPEG/BMP/WebP/GIF image)"),
    ("sound", base64.b64encode(b"this is not audio at all").decode(), "cannot decode"),
    ("photo", "", "the cell is empty"),
])
def test_undecodable_media_is_400_naming_row_and_column(server_url: str, test_rows: list[dict[str, Any]],
                                                         column: str, value: str, message: str) -> None:
    rows = [test_rows[0], test_rows[1], {**test_rows[2], column: value}]
    error = _error(httpx.post(f"{server_url}/v1/predict", json={"rows": rows}), 400)
    assert error["row"] == 2 and error["column"] == column and message in error["message"]
    assert "data.on_bad_row" not in (error["fix"] or "")


@pytest.mark.parametrize("path", ["img/1_0.png", "/etc/passwd"])
def test_paths_are_refused_without_allow_files(server_url_with_key: str, api_key: str,
                                               test_rows: list[dict[str, Any]], path: str) -> None:
    rows = [{**test_rows[0], "photo": path}]
    answer = httpx.post(f"{server_url_with_key}/v1/predict", json={"rows": rows},
                        headers={"Authorization": f"Bearer {api_key}"})
    error = _error(answer, 400)
    assert error["column"] == "photo" and "file paths are refused" in error["message"]
    assert "--allow-files" in error["fix"]


@pytest.mark.parametrize("path", ["../outside.png", "/etc/passwd", "img/../../x.png"])
def test_paths_escaping_the_allowed_folder_are_refused(server_url: str, test_rows: list[dict[str, Any]],
                                                       path: str) -> None:
    rows = [{**test_rows[0], "photo": path}]
    error = _error(httpx.post(f"{server_url}/v1/predict", json={"rows": rows}), 400)
    assert error["column"] == "photo" and "outside the folder the server allows" in error["message"]


def test_symlink_out_of_the_allowed_folder_is_refused(server_url: str, table_dir: Path, tmp_path: Path,
                                                      test_rows: list[dict[str, Any]]) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(_png(4, 4))
    link = table_dir / "img" / "link_out.png"
    link.unlink(missing_ok=True)
    link.symlink_to(secret)
    try:
        rows = [{**test_rows[0], "photo": "img/link_out.png"}]
        error = _error(httpx.post(f"{server_url}/v1/predict", json={"rows": rows}), 400)
        assert "outside the folder" in error["message"]
    finally:
        link.unlink()


def test_missing_allowed_file_is_400(server_url: str, test_rows: list[dict[str, Any]]) -> None:
    rows = [{**test_rows[0], "photo": "img/no_such_file.png"}]
    error = _error(httpx.post(f"{server_url}/v1/predict", json={"rows": rows}), 400)
    assert "does not exist in the allowed folder" in error["message"]


def test_body_too_large_is_413(server_url: str, test_rows: list[dict[str, Any]]) -> None:
    rows = [{**test_rows[0], "note": "word " * 100_000}]  # ~500 kB > 400 kB
    error = _error(httpx.post(f"{server_url}/v1/predict", json={"rows": rows}), 413)
    assert "over the server's limit of 400000 bytes" in error["message"]


def test_chunked_body_too_large_is_413(server_url: str) -> None:
    def chunks() -> Any:
        for _ in range(50):
            yield b" " * 10_000  # 500 kB without a Content-Length

    error = _error(httpx.post(f"{server_url}/v1/predict", content=chunks()), 413)
    assert "over the server's limit" in error["message"]


def test_file_too_large_is_413(server_url: str, test_rows: list[dict[str, Any]]) -> None:
    big = base64.b64encode(b"\0" * 150_000).decode()  # 150 kB file > 100 kB, body 200 kB < 400 kB
    rows = [{**test_rows[0], "sound": big}]
    error = _error(httpx.post(f"{server_url}/v1/predict", json={"rows": rows}), 413)
    assert error["column"] == "sound" and "limit of 100000 bytes per file" in error["message"]


def test_multipart_file_too_large_is_413(server_url: str, test_rows: list[dict[str, Any]]) -> None:
    fields = {k: str(v) for k, v in test_rows[0].items() if k in ("note", "weight", "colour")}
    files = {"photo": ("p.png", _png(4, 4), "image/png"), "sound": ("s.wav", b"\0" * 150_000, "audio/wav")}
    error = _error(httpx.post(f"{server_url}/v1/predict", data=fields, files=files), 413)
    assert error["column"] == "sound"


def test_image_over_the_pixel_limit_is_413(server_url: str, test_rows: list[dict[str, Any]]) -> None:
    image = "data:image/png;base64," + base64.b64encode(_png(200, 100)).decode()  # 20 000 px > 10 000
    error = _error(httpx.post(f"{server_url}/v1/predict", json={"rows": [{**test_rows[0], "photo": image}]}),
                   413)
    assert error["column"] == "photo" and "200x100 = 20000 pixels" in error["message"]


def test_multipart_missing_field_and_file_for_a_text_column(server_url: str,
                                                            test_rows: list[dict[str, Any]]) -> None:
    fields = {"note": "hoot", "weight": "1.0"}
    files = {"photo": ("p.png", _png(4, 4), "image/png"), "sound": ("s.wav", b"RIFF", "audio/wav")}
    error = _error(httpx.post(f"{server_url}/v1/predict", data=fields, files=files), 422)
    assert error["column"] == "colour"
    files["colour"] = ("c.txt", b"red", "text/plain")
    error = _error(httpx.post(f"{server_url}/v1/predict", data=fields, files=files), 400)
    assert error["column"] == "colour" and "got a file upload" in error["message"]


def test_explain_reports_errors_the_same_way(server_url: str, test_rows: list[dict[str, Any]]) -> None:
    error = _error(httpx.post(f"{server_url}/v1/explain", json={"rows": [{**test_rows[0], "photo": "QUJD"}]}),
                   400)
    assert error["row"] == 0 and error["column"] == "photo"


def test_wrong_method_and_unknown_route(server_url: str) -> None:
    assert _error(httpx.get(f"{server_url}/v1/predict"), 405)["message"]
    assert _error(httpx.post(f"{server_url}/v1/nothing", json={}), 404)["fix"] == "see /docs for the routes"


def test_search_is_absent_without_an_index(server_url: str) -> None:
    _error(httpx.post(f"{server_url}/v1/search", json={"text": "cat"}), 404)
