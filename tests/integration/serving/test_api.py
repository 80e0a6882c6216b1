"""The HTTP API end to end: a real uvicorn server, a real HTTP client, the trained test model."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest


def test_health_and_ready(server_url: str) -> None:
    assert httpx.get(f"{server_url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{server_url}/ready")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


def test_model_description(server_url: str, trained_dir: Path) -> None:
    info = httpx.get(f"{server_url}/v1/model").json()
    assert info["name"] == trained_dir.name and info["task"] == "multiclass" and info["label"] == "animal"
    assert info["classes"] == ["cat", "dog", "owl"]
    columns = {c["name"]: c for c in info["columns"]}
    assert {n: c["type"] for n, c in columns.items()} == {
        "photo": "image", "sound": "audio", "note": "text", "weight": "numeric", "colour": "categorical"}
    assert sorted(columns["colour"]["categories"]) == ["blue", "red"]
    assert "categories" not in columns["weight"]
    assert info["metrics"]["split"] == "test" and 0.0 <= info["metrics"]["accuracy"] <= 1.0
    assert info["explain"] is True and info["search"] is False and info["version"]


def test_predict_matches_the_python_api(server_url: str, serving_predictor: Any, table_dir: Path,
                                        test_table: pd.DataFrame, test_rows: list[dict[str, Any]]) -> None:
    answer = httpx.post(f"{server_url}/v1/predict", json={"rows": test_rows[:6]})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    expected = serving_predictor.predict_proba(test_table.iloc[:6], base_dir=table_dir)
    assert [p["prediction"] for p in predictions] == serving_predictor.predict(test_table.iloc[:6],
                                                                               base_dir=table_dir)
    for got, (_, want) in zip(predictions, expected.iterrows(), strict=True):
        assert got["probabilities"] == pytest.approx(want.to_dict(), abs=1e-5)


def test_raw_base64_image_and_data_url_audio_give_the_same_answer(
    server_url: str, test_rows: list[dict[str, Any]]
) -> None:
    row = test_rows[1]
    swapped = {**row, "photo": row["photo"].split(",", 1)[1],
               "sound": "data:audio/wav;base64," + row["sound"]}
    answers = httpx.post(f"{server_url}/v1/predict", json={"rows": [row, swapped]}).json()["predictions"]
    assert answers[0] == answers[1]


def test_allowed_path_gives_the_same_answer_as_inline_bytes(
    server_url: str, test_table: pd.DataFrame, test_rows: list[dict[str, Any]], input_names: tuple[str, ...]
) -> None:
    by_path = {name: test_table.iloc[2][name] for name in input_names}
    answers = httpx.post(f"{server_url}/v1/predict", json={"rows": [by_path, test_rows[2]]}).json()
    assert answers["predictions"][0] == answers["predictions"][1]


def test_multipart_single_row(server_url: str, table_dir: Path, test_table: pd.DataFrame,
                              test_rows: list[dict[str, Any]]) -> None:
    row = test_table.iloc[3]
    files = {"photo": ("p.png", (table_dir / row["photo"]).read_bytes(), "image/png"),
             "sound": ("s.wav", (table_dir / row["sound"]).read_bytes(), "audio/wav")}
    fields = {"note": row["note"], "weight": str(row["weight"]), "colour": row["colour"]}
    answer = httpx.post(f"{server_url}/v1/predict", data=fields, files=files)
    assert answer.status_code == 200, answer.text
    json_answer = httpx.post(f"{server_url}/v1/predict", json={"rows": [test_rows[3]]}).json()
    assert answer.json()["predictions"][0]["prediction"] == json_answer["predictions"][0]["prediction"]
    assert answer.json()["predictions"][0]["probabilities"] == pytest.approx(
        json_answer["predictions"][0]["probabilities"], abs=1e-5)


def test_explain(server_url: str, serving_predictor: Any, table_dir: Path, test_table: pd.DataFrame,
                 test_rows: list[dict[str, Any]]) -> None:
    answer = httpx.post(f"{server_url}/v1/explain", json={"rows": test_rows[:2]})
    assert answer.status_code == 200, answer.text
    explanations = answer.json()["explanations"]
    expected = serving_predictor.explain(test_table.iloc[:2], base_dir=table_dir)
    assert len(explanations) == 2
    for got, (_, want) in zip(explanations, expected.iterrows(), strict=True):
        assert got["prediction"] == want["prediction"]
        assert got["probability"] == pytest.approx(want["probability"], abs=1e-5)
        assert set(got["inputs"]) == {"note", "photo", "sound", "tabular"}
        for name, effect in got["inputs"].items():
            assert effect["delta"] == pytest.approx(want[f"delta_{name}"], abs=1e-5)
            assert effect["weight"] == pytest.approx(want[f"weight_{name}"], abs=1e-5)  # attention fusion


def test_explain_multipart(server_url: str, table_dir: Path, test_table: pd.DataFrame) -> None:
    row = test_table.iloc[0]
    files = {"photo": ("p.png", (table_dir / row["photo"]).read_bytes(), "image/png"),
             "sound": ("s.wav", (table_dir / row["sound"]).read_bytes(), "audio/wav")}
    fields = {"note": row["note"], "weight": str(row["weight"]), "colour": row["colour"]}
    answer = httpx.post(f"{server_url}/v1/explain", data=fields, files=files)
    assert answer.status_code == 200 and len(answer.json()["explanations"]) == 1


def test_metrics_after_traffic(server_url: str, test_rows: list[dict[str, Any]]) -> None:
    httpx.post(f"{server_url}/v1/predict", json={"rows": test_rows[:1]})
    httpx.post(f"{server_url}/v1/predict", content=b"not json")
    text = httpx.get(f"{server_url}/metrics").text
    assert "# TYPE omnifuse_requests_total counter" in text
    ok = re.search(r'omnifuse_requests_total\{route="/v1/predict",method="POST",status="200"\} (\d+)', text)
    bad = re.search(r'omnifuse_errors_total\{route="/v1/predict",status="400"\} (\d+)', text)
    assert ok and int(ok.group(1)) >= 1 and bad and int(bad.group(1)) >= 1
    assert re.search(r'omnifuse_request_duration_seconds_bucket\{route="/v1/predict",le="\+Inf"\} \d+', text)
    rows = re.search(r"omnifuse_rows_total (\d+)", text)
    assert rows and int(rows.group(1)) >= 1


def test_openapi_is_generated_from_the_columns(server_url: str, input_names: tuple[str, ...]) -> None:
    schema = httpx.get(f"{server_url}/openapi.json").json()
    row = schema["components"]["schemas"]["Row"]
    assert set(row["properties"]) == set(input_names)
    photo = row["properties"]["photo"]
    assert photo["type"] == "string" and "base64" in photo["description"]
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"]["$ref"] == "#/components/schemas/PredictRequest"
    assert body["multipart/form-data"]["schema"]["properties"]["photo"]["format"] == "binary"
    assert httpx.get(f"{server_url}/docs").status_code == 200


@pytest.mark.parametrize(("header", "message"), [
    ("", "missing API key"),
    ("Bearer wrong", "wrong API key"),
    ("Bearer {key}x", "wrong API key"),
    ("Basic {key}", "missing API key"),
])
def test_auth_refuses_missing_or_wrong_keys(server_url_with_key: str, api_key: str, header: str,
                                            message: str) -> None:
    headers = {"Authorization": header.format(key=api_key)} if header else {}
    for method, route in (("GET", "/v1/model"), ("POST", "/v1/predict"), ("GET", "/metrics")):
        answer = httpx.request(method, f"{server_url_with_key}{route}", headers=headers, json={"rows": []})
        assert answer.status_code == 401, route
        assert answer.json()["error"]["message"].startswith(message)
        assert answer.headers["www-authenticate"] == "Bearer"


def test_auth_accepts_the_key_and_leaves_open_routes_open(server_url_with_key: str, api_key: str,
                                                          test_rows: list[dict[str, Any]]) -> None:
    key = {"Authorization": f"Bearer {api_key}"}
    assert httpx.get(f"{server_url_with_key}/v1/model", headers=key).status_code == 200
    answer = httpx.post(f"{server_url_with_key}/v1/predict", headers=key, json={"rows": test_rows[:1]})
    assert answer.status_code == 200
    assert httpx.get(f"{server_url_with_key}/metrics", headers=key).status_code == 200
    for route in ("/health", "/ready", "/"):
        assert httpx.get(f"{server_url_with_key}{route}").status_code == 200, route


def test_web_page_and_static_files_are_served(server_url: str) -> None:
    page = httpx.get(f"{server_url}/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert httpx.get(f"{server_url}/static/app.js").status_code == 200
    missing = httpx.get(f"{server_url}/no/such/route")
    assert missing.status_code == 404 and missing.json()["error"]["message"]
