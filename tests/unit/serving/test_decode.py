"""Request decoding: types, data URLs, base64, allowed paths, size and pixel limits, search bodies."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omnifuse.serving.decode import (
    Limits,
    decode_cell,
    decode_row,
    looks_like_path,
    media_bytes,
    parse_form_row,
    parse_json_rows,
    parse_search,
)
from omnifuse.serving.errors import ApiError

COLUMNS = {"photo": "image", "note": "text", "weight": "numeric", "colour": "categorical"}
PNG_BYTES = b"\x89PNG fake"


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((height, width), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_json_rows_decode_media_and_keep_other_cells() -> None:
    body = json.dumps({"rows": [{"photo": "data:image/png;base64," + _b64(PNG_BYTES), "note": "hi",
                                 "weight": 2, "colour": "red", "extra": [1]}]}).encode()
    assert parse_json_rows(body, COLUMNS, Limits()) == [
        {"photo": PNG_BYTES, "note": "hi", "weight": 2, "colour": "red"}]


@pytest.mark.parametrize("text", [_b64(PNG_BYTES), _b64(PNG_BYTES).rstrip("="),
                                  base64.urlsafe_b64encode(b"\xfb\xff\xfe" * 3).decode(),
                                  "data:;base64," + _b64(PNG_BYTES),
                                  "DATA:image/png;charset=x;base64," + _b64(b"a")])
def test_base64_forms(text: str) -> None:
    assert media_bytes(0, "photo", text, Limits()) == base64.urlsafe_b64decode(
        text.split(",")[-1] + "=" * (-len(text.split(",")[-1]) % 4))


@pytest.mark.parametrize(("text", "status", "message"), [
    ("data:image/png,plain", 400, "is not a base64 data: URL"),
    ("data:image/png;base64,@@", 400, "cannot decode the base64 data"),
    ("abcde", 400, "cannot decode the base64 data"),
    ("img/cat.png", 400, "file paths are refused"),
    ("/etc/passwd", 400, "file paths are refused"),
    (_b64(b"x" * 300), 413, "the file is 300 bytes, over the server's limit of 200 bytes per file"),
])
def test_bad_media_strings(text: str, status: int, message: str) -> None:
    with pytest.raises(ApiError, match=message) as caught:
        media_bytes(3, "photo", text, Limits(max_file_bytes=200))
    assert caught.value.status == status and caught.value.row == 3 and caught.value.column == "photo"


def test_allowed_paths_inside_only(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(PNG_BYTES)
    (tmp_path / "secret.png").write_bytes(b"secret")
    (tmp_path / "in" / "link.png").symlink_to(tmp_path / "secret.png")
    limits = Limits(allow_files=tmp_path / "in")
    assert media_bytes(0, "photo", "a.png", limits) == PNG_BYTES
    assert media_bytes(0, "photo", str(tmp_path / "in" / "a.png"), limits) == PNG_BYTES
    for outside in ("../secret.png", str(tmp_path / "secret.png"), "link.png"):
        with pytest.raises(ApiError, match="resolves outside the folder the server allows"):
            media_bytes(0, "photo", outside, limits)
    with pytest.raises(ApiError, match="does not exist in the allowed folder"):
        media_bytes(0, "photo", "b.png", limits)
    with pytest.raises(ApiError, match="over the server's limit of 2 bytes") as caught:
        media_bytes(0, "photo", "a.png", Limits(allow_files=tmp_path / "in", max_file_bytes=2))
    assert caught.value.status == 413


def test_pixel_limit_reads_only_the_header() -> None:
    limits = Limits(max_pixels=100)
    assert decode_cell(0, "photo", "image", _b64(_png(10, 10)), limits) == _png(10, 10)
    with pytest.raises(ApiError, match=r"the image is 20x10 = 200 pixels, over the server's limit of 100"):
        decode_cell(1, "photo", "image", _b64(_png(20, 10)), limits)
    assert decode_cell(0, "photo", "image", _b64(b"not an image"), limits) == b"not an image"  # model reports


@pytest.mark.parametrize(("kind", "value", "message"), [
    ("text", {"a": 1}, "expected a string, got an object"),
    ("numeric", True, "expected a number, got a boolean"),
    ("numeric", [1], "expected a number, got a list"),
    ("categorical", {}, "expected a string or number, got an object"),
    ("image", 5, "expected a string .data: URL, base64 or allowed path., got a number 5"),
])
def test_wrong_types(kind: str, value: object, message: str) -> None:
    with pytest.raises(ApiError, match=message) as caught:
        decode_cell(2, "c", kind, value, Limits())
    assert caught.value.status == 400 and caught.value.row == 2 and caught.value.column == "c"


def test_accepted_values_pass_through() -> None:
    assert decode_cell(0, "c", "numeric", "3.5", Limits()) == "3.5"  # the model's parser reads strings
    assert decode_cell(0, "c", "categorical", True, Limits()) is True
    assert decode_cell(0, "c", "text", 12, Limits()) == 12
    assert decode_cell(0, "c", "image", None, Limits()) is None
    assert decode_cell(0, "c", "image", "  ", Limits()) is None


@pytest.mark.parametrize(("body", "status", "message"), [
    (b"{", 400, "not valid JSON"),
    (b'"rows"', 422, 'the body needs a "rows" list, got str'),
    (b'{"rows": 3}', 422, '"rows" must be a list of row objects, got a number'),
    (b'{"rows": []}', 422, '"rows" is empty'),
    (b'{"rows": [[]]}', 422, "row 0 must be an object"),
])
def test_bad_bodies(body: bytes, status: int, message: str) -> None:
    with pytest.raises(ApiError, match=message) as caught:
        parse_json_rows(body, COLUMNS, Limits())
    assert caught.value.status == status


def test_missing_columns_are_listed() -> None:
    with pytest.raises(ApiError, match=r"row 4 has no column 'photo' \(missing: photo, weight\)") as caught:
        decode_row(4, {"note": "x", "colour": "red"}, COLUMNS, Limits())
    assert caught.value.status == 422 and caught.value.column == "photo" and caught.value.row == 4


class _Upload:
    def __init__(self, data: bytes, filename: str = "f.png") -> None:
        self.file, self.size, self.filename = io.BytesIO(data), len(data), filename


def test_form_row_reads_uploads_and_treats_an_empty_file_field_as_missing() -> None:
    form = {"photo": _Upload(PNG_BYTES), "note": "hi", "weight": "1.5", "colour": "red"}
    assert parse_form_row(form, COLUMNS, Limits()) == [
        {"photo": PNG_BYTES, "note": "hi", "weight": "1.5", "colour": "red"}]
    form["photo"] = _Upload(b"", filename="")
    assert parse_form_row(form, COLUMNS, Limits())[0]["photo"] is None
    form["note"] = _Upload(b"text")
    with pytest.raises(ApiError, match="column 'note' row 0: expected a form field, got a file upload"):
        parse_form_row(form, COLUMNS, Limits())


def test_search_bodies() -> None:
    assert parse_search(b'{"text": "a cat", "k": 3}', Limits()) == {"text": "a cat", "k": 3}
    image = parse_search(json.dumps({"image": "data:image/png;base64," + _b64(PNG_BYTES)}).encode(), Limits())
    assert image == {"image": PNG_BYTES, "k": 10}
    for body, message in ((b'{"text": "a", "image": "QUJD"}', "exactly one of text, image, audio"),
                          (b"{}", "exactly one of text, image, audio; got none"),
                          (b'{"text": 5}', "'text' must be a non-empty string"),
                          (b'{"text": "a", "k": 0}', '"k" must be an integer from 1 to 1000'),
                          (b'{"text": "a", "k": true}', '"k" must be an integer from 1 to 1000')):
        with pytest.raises(ApiError, match=message) as caught:
            parse_search(body, Limits())
        assert caught.value.status == 422
    with pytest.raises(ApiError, match="field 'audio': cannot decode the base64 data") as bad:
        parse_search(b'{"audio": "@@@"}', Limits())
    assert bad.value.status == 400 and bad.value.row is None and bad.value.column == "audio"


def test_looks_like_path() -> None:
    assert looks_like_path("img/a.png") and looks_like_path("/etc/passwd") and looks_like_path("~/x")
    assert not looks_like_path(_b64(b"abc" * 10)) and not looks_like_path("/" + "A" * 2000)


@pytest.mark.parametrize(("body", "message"), [
    (b'{"rows": [{"weight": ' + b"7" * 5000 + b"}]}", r"not valid JSON \(Exceeds the limit"),
    (b"[" * 100_000 + b"]" * 100_000, r"not valid JSON \(it is nested too deeply\)"),
    (b'{"rows": [{"weight": NaN}]}', r"not valid JSON \(NaN is not a JSON number"),
    (b'{"rows": [{"weight": -Infinity}]}', r"not valid JSON \(-Infinity is not a JSON number"),
    (b"\xff\xfe{", r"not valid JSON"),
])
def test_json_that_python_refuses_is_400_in_rows_and_search(body: bytes, message: str) -> None:
    for parse in (lambda: parse_json_rows(body, COLUMNS, Limits()), lambda: parse_search(body, Limits())):
        with pytest.raises(ApiError, match=message) as caught:
            parse()
        assert caught.value.status == 400


def _limits(folder: Path, max_bytes: int = 1000) -> Limits:
    return Limits(allow_files=folder, max_file_bytes=max_bytes)


@pytest.mark.parametrize(("name", "message"), [
    ("img/a\x00b.png", r"row 2: file .* cannot be read from the allowed folder \(embedded nul"),
    ("a" * 300 + ".png", r"column 'photo' row 2: file .* cannot be read .*\(File name too long\)"),
])
def test_unreadable_paths_are_400_naming_row_and_column(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(ApiError, match=message) as caught:
        media_bytes(2, "photo", name, _limits(tmp_path))
    assert (caught.value.status, caught.value.row, caught.value.column) == (400, 2, "photo")


def test_an_unreadable_file_is_400(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x.png").write_bytes(b"data")

    def refuse(*args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("omnifuse.serving.decode.os.open", refuse)  # root ignores chmod 000
    with pytest.raises(ApiError, match=r"row 0: file 'x.png' cannot be read .*\(Permission denied\)"):
        media_bytes(0, "photo", "x.png", _limits(tmp_path))


def test_a_file_larger_than_its_stat_size_is_still_413() -> None:
    # /proc files report st_size 0 but hold bytes: like a file that grows after the size check
    folder = Path("/proc/self")
    if not (folder / "status").is_file():
        pytest.skip("needs Linux /proc")
    with pytest.raises(ApiError, match=r"the file is 101 bytes, over the server's limit of 100") as caught:
        media_bytes(0, "photo", "./status", _limits(folder, 100))
    assert caught.value.status == 413


def test_a_symlink_swapped_in_after_the_check_is_not_followed(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"outside")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "a.png").symlink_to(secret)
    # the race: the path was checked as a plain file inside the folder, then became a symlink out of it
    monkeypatch.setattr(Path, "resolve", lambda self, strict=False: Path(os.path.abspath(self)))
    with pytest.raises(ApiError, match=r"file 'a.png' cannot be read .*symbolic links") as caught:
        media_bytes(0, "photo", "a.png", _limits(allowed))
    assert caught.value.status == 400
