"""Request bodies -> row dicts the Predictor takes, with media cells as ``bytes``.

JSON bodies are ``{"rows": [{column: value}, ...]}``; multipart forms are one row (a field per column,
image/audio columns as file uploads). A media cell is a ``data:<mime>;base64,...`` URL, raw base64, or,
only when the server runs with ``--allow-files DIR``, a path that resolves (``..`` and symlinks followed)
inside DIR. Each problem is an ApiError naming the row and the column: 400 for a wrong type or
undecodable data, 413 for a file over the size or pixel limit, 422 for a missing column or a body that
is not ``{"rows": [...]}``.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import re
import stat
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omnifuse.config.sections import Config
from omnifuse.data.io import resolve_path
from omnifuse.serving.errors import ApiError

MEDIA_TYPES = ("image", "audio", "video")
_BASE64 = re.compile(r"^[A-Za-z0-9+/=_\-\s]+$")
_DATA_URL = re.compile(r"^data:([^,;]*)((?:;[^,;]*)*),", re.IGNORECASE)
MAX_PATH_CHARS = 1024
ROWS_FIX = 'send {"rows": [{column: value, ...}, ...]} (see /docs)'


@dataclass(frozen=True)
class Limits:
    """What the server accepts in a media cell.

    Attributes:
        allow_files: the folder paths may point into; None refuses paths.
        max_file_bytes: most bytes of one decoded file.
        max_pixels: most pixels (width x height) of one image; None leaves it to the model's own limit.
    """

    allow_files: Path | None = None
    max_file_bytes: int = 8 * 1024 * 1024
    max_pixels: int | None = None


def input_columns(config: Config) -> dict[str, str]:
    """Input column -> its type (text, image, audio, video, numeric, categorical), in config order."""
    return config.table_types()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; send null for a missing value")


def load_json(body: bytes, fix: str) -> Any:
    """Parses a request body as strict JSON.

    Raises:
        ApiError: 400 for anything that is not valid JSON: a syntax error, bad UTF-8, NaN/Infinity, an
            integer with too many digits, or nesting too deep to parse.
    """
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise ApiError(400, "the request body is not valid JSON (it is nested too deeply)", fix=fix) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity, huge integers
        message = f"the request body is not valid JSON ({_short_text(str(exc))})"
        raise ApiError(400, message, fix=fix) from None


def _short_text(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_json_rows(body: bytes, columns: dict[str, str], limits: Limits) -> list[dict[str, Any]]:
    """Parses a JSON body into decoded rows.

    Raises:
        ApiError: 400 not JSON; 422 not ``{"rows": [non-empty list of objects]}`` or a missing column;
            400/413 a bad cell (see ``decode_row``).
    """
    payload = load_json(body, ROWS_FIX)
    if not isinstance(payload, dict) or "rows" not in payload:
        got = type(payload).__name__ if not isinstance(payload, dict) else f"keys {sorted(payload)[:10]}"
        raise ApiError(422, f'the body needs a "rows" list, got {got}', fix=ROWS_FIX)
    rows = payload["rows"]
    if not isinstance(rows, list):
        raise ApiError(422, f'"rows" must be a list of row objects, got {_kind(rows)}', fix=ROWS_FIX)
    if not rows:
        raise ApiError(422, '"rows" is empty: there is nothing to predict', fix="send at least one row")
    return [decode_row(i, row, columns, limits) for i, row in enumerate(rows)]


def parse_form_row(form: Mapping[str, Any], columns: dict[str, str], limits: Limits) -> list[dict[str, Any]]:
    """Decodes a multipart (or url-encoded) form holding one row: a field per column, media as uploads.

    An empty file field (nothing chosen in a browser) counts as a missing value.

    Raises:
        ApiError: as ``decode_row``; 400 also for a file uploaded for a non-media column.
    """
    row: dict[str, Any] = {}
    for name, kind in columns.items():
        if name not in form:
            continue
        value = form[name]
        if not hasattr(value, "file"):  # a plain field: a string
            row[name] = value
            continue
        if kind not in MEDIA_TYPES:
            raise ApiError(400, f"column {name!r} row 0: expected a form field, got a file upload", 0, name,
                           f"send {name!r} as a plain form field")
        size = value.size if value.size is not None else 0
        if not value.filename and size == 0:
            row[name] = None
            continue
        check_size(0, name, size, limits)
        value.file.seek(0)
        row[name] = value.file.read()
    return [decode_row(0, row, columns, limits)]


def decode_row(index: int, row: Any, columns: dict[str, str], limits: Limits) -> dict[str, Any]:
    """Checks one row's cells against the column types and decodes its media cells to bytes.

    Args:
        index: the row's position in the request (for messages).
        row: the row object from the body.
        columns: input column -> type.
        limits: media limits.

    Returns:
        {column: value} for the input columns only (media as ``bytes`` or None).

    Raises:
        ApiError: 422 not an object or a missing column; 400 a value of the wrong type or undecodable;
            413 a file over the limits.
    """
    if not isinstance(row, dict):
        raise ApiError(422, f"row {index} must be an object {{column: value}}, got {_kind(row)}",
                       row=index, fix=ROWS_FIX)
    missing = [name for name in columns if name not in row]
    if missing:
        raise ApiError(422, f"row {index} has no column {missing[0]!r} (missing: {', '.join(missing)})",
                       row=index, column=missing[0],
                       fix=f"send every input column: {', '.join(columns)}; null marks a missing value")
    return {name: decode_cell(index, name, kind, row[name], limits) for name, kind in columns.items()}


def decode_cell(index: int, column: str, kind: str, value: Any, limits: Limits) -> Any:
    """One cell, type-checked; media strings become bytes (None stays None).

    Raises:
        ApiError: 400 wrong type or undecodable media; 413 too large.
    """
    if value is None:
        return None
    if kind in MEDIA_TYPES:
        data: bytes | None
        if isinstance(value, (bytes, bytearray)):
            data = bytes(value)
        elif isinstance(value, str):
            data = media_bytes(index, column, value, limits) if value.strip() else None
        else:
            raise _wrong_type(index, column, value, "a string (data: URL, base64 or allowed path)")
        if data is not None:
            check_size(index, column, len(data), limits)
            if kind == "image":
                check_pixels(index, column, data, limits)
        return data
    allowed: tuple[type, ...] = {"text": (str, int, float), "numeric": (int, float, str)}.get(
        kind, (str, int, float, bool))
    if isinstance(value, bool) and kind != "categorical" or not isinstance(value, allowed):
        expected = {"text": "a string", "numeric": "a number"}.get(kind, "a string or number")
        raise _wrong_type(index, column, value, expected)
    return value


def media_bytes(index: int, column: str, text: str, limits: Limits) -> bytes:
    """The bytes of a media cell given as a data: URL, raw base64 or (when allowed) a path.

    Raises:
        ApiError: 400 undecodable or a refused path; 413 too large.
    """
    if text[:5].lower() == "data:":
        return _data_url(index, column, text, limits)
    if _BASE64.match(text) and not looks_like_path(text):
        return b64decode(index, column, text, limits)
    if limits.allow_files is not None:
        return read_allowed_file(index, column, text, limits)
    raise ApiError(
        400, f"column {column!r} row {index}: {_short(text)} is not a data: URL or base64, and file paths "
        "are refused (the server runs without --allow-files)", index, column,
        "send the file's bytes as data:<mime>;base64,... or raw base64, or start the server with "
        "--allow-files DIR to accept paths inside DIR")


def _data_url(index: int, column: str, text: str, limits: Limits) -> bytes:
    match = _DATA_URL.match(text)
    if not match or ";base64" not in match.group(2).lower():
        raise ApiError(400, f"column {column!r} row {index}: {_short(text)} is not a base64 data: URL",
                       index, column, "use the form data:<mime>;base64,<base64 bytes>")
    return b64decode(index, column, text[match.end():], limits)


def b64decode(index: int, column: str, text: str, limits: Limits) -> bytes:
    """Decodes standard or URL-safe base64 (padding optional, whitespace ignored).

    Raises:
        ApiError: 413 when the decoded size would pass ``max_file_bytes``; 400 not valid base64.
    """
    compact = "".join(text.split())
    check_size(index, column, len(compact) * 3 // 4, limits)
    padded = compact + "=" * (-len(compact) % 4)
    try:
        if "-" in padded or "_" in padded:
            return base64.urlsafe_b64decode(padded.encode("ascii"))
        return base64.b64decode(padded.encode("ascii"), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"column {column!r} row {index}: cannot decode the base64 data {_short(text)}",
                       index, column, "send the file's bytes base64-encoded (RFC 4648)") from None


def read_allowed_file(index: int, column: str, text: str, limits: Limits) -> bytes:
    """Reads a file named by a path inside ``limits.allow_files``.

    The resolved path is opened without following a final symlink, the opened file is checked to still
    be that path inside the folder (a symlink swapped in between is refused), and at most
    ``max_file_bytes + 1`` bytes are read (a file growing after the size check still gets a 413).

    Raises:
        ApiError: 400 the path resolves outside the folder, does not exist, is not a regular file or
            cannot be read (a NUL byte, a name too long, no permission); 413 too large.
    """
    assert limits.allow_files is not None
    where = f"column {column!r} row {index}: file {_short(text)}"
    try:
        base = limits.allow_files.resolve()
        path = resolve_path(text, base)
        try:
            real = path.resolve()
        except RuntimeError:  # symlink loops
            real = path
        _check_inside(real, base, where, index, column)
        if not real.is_file():
            raise ApiError(400, f"{where} does not exist in the allowed folder (or is not a file)", index,
                           column, "check the path; it is relative to the server's --allow-files folder")
        check_size(index, column, real.stat().st_size, limits)
        data = _read_bounded(real, base, limits.max_file_bytes, where, index, column)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ApiError(400, f"{where} cannot be read from the allowed folder ({reason})", index, column,
                       "check the path and the file's permissions, or send the bytes as base64") from None
    check_size(index, column, len(data), limits)
    return data


def _check_inside(real: Path, base: Path, where: str, index: int, column: str) -> None:
    if not real.is_relative_to(base):
        raise ApiError(400, f"{where} resolves outside the folder the server allows (--allow-files)",
                       index, column, "use a path inside the allowed folder, or send the bytes as base64")


def _read_bounded(real: Path, base: Path, limit: int, where: str, index: int, column: str) -> bytes:
    """At most ``limit + 1`` bytes of the regular file ``real`` (resolved), opened without following a
    symlink, after checking that the opened file is still ``real`` inside ``base``.

    Raises:
        ApiError: 400 the file was swapped for something outside ``base`` or is not a regular file.
        OSError: it cannot be opened (a symlink swapped in: ELOOP) or read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    with os.fdopen(os.open(real, flags), "rb") as handle:
        opened = os.fstat(handle.fileno())
        if not stat.S_ISREG(opened.st_mode):
            raise ApiError(400, f"{where} is not a regular file", index, column,
                           "name a regular file inside the allowed folder")
        link = Path(f"/proc/self/fd/{handle.fileno()}")
        now = Path(os.readlink(link)) if link.is_symlink() else real.resolve()
        _check_inside(now, base, where, index, column)
        if not os.path.samestat(opened, os.stat(now)):
            raise ApiError(400, f"{where} changed while it was being opened", index, column,
                           "retry, and do not replace files in the allowed folder while they are read")
        return handle.read(limit + 1)


def looks_like_path(text: str) -> bool:
    """True for a short string with a dot, or starting with /, ~ or . (raw base64 has no dot or tilde;
    base64 that starts with / is a path only when short, as a file's base64 is rarely under 1 kB)."""
    return len(text) <= MAX_PATH_CHARS and (text.startswith(("/", "~", ".")) or "." in text or "\\" in text)


def check_size(index: int, column: str, size: int, limits: Limits) -> None:
    """Raises ApiError 413 when a file of ``size`` bytes is over ``max_file_bytes``."""
    if size > limits.max_file_bytes:
        raise ApiError(413, f"column {column!r} row {index}: the file is {size} bytes, over the server's "
                       f"limit of {limits.max_file_bytes} bytes per file", index, column,
                       "send a smaller file, or start the server with a larger --max-file-mb")


def check_pixels(index: int, column: str, data: bytes, limits: Limits) -> None:
    """Raises ApiError 413 when the image header says it has more than ``max_pixels`` pixels.

    Only the header is read; undecodable data is left to the model's preprocessor, which names it.
    """
    if limits.max_pixels is None:
        return
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
        except Image.DecompressionBombError:
            width, height = limits.max_pixels + 1, 1
        except Exception:  # not an image: the preprocessor reports it with its own message
            return
    if width * height > limits.max_pixels:
        raise ApiError(413, f"column {column!r} row {index}: the image is {width}x{height} = "
                       f"{width * height} pixels, over the server's limit of {limits.max_pixels}",
                       index, column, "downscale the image, or start the server with a larger --max-pixels")


def _wrong_type(index: int, column: str, value: Any, expected: str) -> ApiError:
    return ApiError(400, f"column {column!r} row {index}: expected {expected}, got {_kind(value)} "
                    f"{_short(value)}", index, column, f"send {expected} for {column!r}")


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


SEARCH_FIX = 'send {"text": "..."} or {"image": "<base64>"} or {"audio": "<base64>"}, optionally with "k"'
MAX_K = 1000


def parse_search(body: bytes, limits: Limits) -> dict[str, Any]:
    """Parses a ``/v1/search`` body into ``index.search`` keyword arguments (media as bytes).

    Raises:
        ApiError: 400 not JSON or undecodable base64; 413 too large; 422 not exactly one of text, image,
            audio, a wrong type, or ``k`` outside 1..1000.
    """
    payload = load_json(body, SEARCH_FIX)
    if not isinstance(payload, dict):
        raise ApiError(422, f"the body must be a JSON object, got {_kind(payload)}", fix=SEARCH_FIX)
    given = [key for key in ("text", "image", "audio") if payload.get(key) is not None]
    if len(given) != 1:
        raise ApiError(422, f"give exactly one of text, image, audio; got {given or 'none'}", fix=SEARCH_FIX)
    field, value = given[0], payload[given[0]]
    if not isinstance(value, str) or not value.strip():
        raise ApiError(422, f"{field!r} must be a non-empty string, got {_kind(value)}", column=field,
                       fix=SEARCH_FIX)
    k = payload.get("k", 10)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ApiError(422, f'"k" must be an integer from 1 to {MAX_K}, got {_short(k)}', column="k",
                       fix=f"send k between 1 and {MAX_K}")
    if field == "text":
        return {"text": value, "k": k}
    try:
        data = _data_url(0, field, value, limits) if value[:5].lower() == "data:" else b64decode(
            0, field, value, limits)
        check_size(0, field, len(data), limits)
    except ApiError as exc:
        raise ApiError(exc.status, exc.message.replace(f"column {field!r} row 0", f"field {field!r}"),
                       None, field, exc.fix) from None
    return {field: data, "k": k}
