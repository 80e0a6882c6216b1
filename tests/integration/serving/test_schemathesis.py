"""Property-based API testing: schemathesis generates requests from ``/openapi.json``; none may get a 500.

Valid (positive) and schema-violating (negative) requests are generated for every operation, with a small
number of examples each so that the test stays fast; the answers must also match the documented statuses,
content types and response schemas.
"""

from __future__ import annotations

from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _operations(url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_generated_requests_never_get_a_server_error(server_url: str, mode: Any) -> None:
    operations = _operations(server_url)
    labels = {op.label for op in operations}
    assert {"POST /v1/predict", "POST /v1/explain", "GET /v1/model", "GET /metrics"} <= labels
    for operation in operations:
        if mode == GenerationMode.NEGATIVE and operation.method.upper() != "POST":
            continue  # nothing to violate: these routes take no body or parameters
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                  derandomize=True, database=None)
        def check(case: Any) -> None:
            case.call_and_validate(base_url=server_url, checks=CHECKS)

        check()
