"""The served OpenAPI document: valid OpenAPI 3.1, matching the URLconf, and strict enough that the
response checks of the other API tests can fail."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import JsonResponse
from django.urls import resolve

from tests.api.conftest import BASE, check_response, served_document

pytestmark = pytest.mark.django_db


def test_document_is_valid_openapi_3_1() -> None:
    from openapi_spec_validator import validate

    document = served_document()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": BASE}]


def test_every_documented_path_is_routed_to_an_api_view() -> None:
    for template, operations in served_document()["paths"].items():
        path = BASE + template.replace("{name}", "wf").replace("{run_id}", "0" * 32)
        match = resolve(path)
        assert match.namespace == "django_dataflow_api" and match.url_name != "unknown", template
        assert set(operations) <= {"get", "post"}


def test_response_check_refuses_what_the_document_does_not_allow() -> None:
    run_path = f"{BASE}/runs/{'0' * 32}"
    with pytest.raises(AssertionError, match="not documented"):
        check_response("GET", run_path, JsonResponse({}, status=418))
    with pytest.raises(AssertionError, match="required property"):
        check_response("GET", run_path, JsonResponse({"run_id": "x"}))
    with pytest.raises(AssertionError, match="Additional properties"):
        check_response("GET", run_path, JsonResponse({"error": {
            "type": "x", "message": "m", "node_id": None, "details": None, "extra": 1}}, status=404))
    with pytest.raises(AssertionError, match="lacks header WWW-Authenticate"):
        check_response("GET", run_path, JsonResponse({"error": {
            "type": "x", "message": "m", "node_id": None, "details": None}}, status=401))
    with pytest.raises(AssertionError, match="undocumented"):
        check_response("GET", f"{BASE}/runs/x/y", JsonResponse({}, status=200))


def test_every_node_params_schema_is_a_valid_json_schema(api: Any) -> None:
    from jsonschema import Draft202012Validator

    catalog = api.get_api("nodes/").json()
    count = 0
    for model in catalog["models"]:
        for node in model["nodes"]:
            Draft202012Validator.check_schema(node["params_schema"])
            count += 1
    assert count == 11 * len(catalog["models"])
