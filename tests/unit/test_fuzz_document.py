"""tests/support/fuzz_document.py: the served document plus concrete paths per collection."""

from __future__ import annotations

import copy
from typing import Any

from tests.support.fuzz_document import narrowed
from worker import openapi
from worker.api.openapi import with_collections
from worker.app import ROUTES

NOTES = {"type": "object", "required": ["title"], "additionalProperties": False,
         "properties": {"title": {"type": "string", "minLength": 1}, "body": {"type": "string"}}}
SCHEMAS = {"notes": NOTES, "settings": {"type": "object"}}


def _served() -> dict[str, Any]:
    return with_collections(openapi.document(ROUTES), ["notes", "settings"])


def _params(op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in op["parameters"]}


def test_the_served_paths_stay_as_served() -> None:
    served = _served()
    doc = narrowed(served, SCHEMAS, existing={"notes": ["n1"]})
    assert {path: doc["paths"][path] for path in served["paths"] if path != "/v1/batch"} == \
        {path: ops for path, ops in served["paths"].items() if path != "/v1/batch"}
    assert served == _served(), "the served document was changed in place"


def test_each_collection_gets_its_paths_with_its_own_data_schema_and_answers() -> None:
    served = _served()
    doc = narrowed(served, SCHEMAS, existing={"notes": ["n1", "n2"]})
    create = doc["paths"]["/v1/collections/notes/documents"]["post"]
    generic = served["paths"]["/v1/collections/{collection}/documents"]["post"]
    assert create["operationId"] == "post_documents_create__notes"
    assert create["requestBody"]["content"]["application/json"]["schema"]["properties"]["data"] == NOTES
    assert create["responses"] == _links_renamed(generic["responses"], "notes")
    assert "collection" not in _params(create) and "if-match" not in _params(create)
    assert _params(create) == {}
    replace = doc["paths"]["/v1/collections/notes/documents/{id}"]["put"]
    assert _params(replace)["id"]["schema"]["anyOf"][0] == {"enum": ["n1", "n2"]}
    assert "if-match" not in _params(replace)
    patch = doc["paths"]["/v1/collections/notes/documents/{id}"]["patch"]
    data = patch["requestBody"]["content"]["application/merge-patch+json"]["schema"]["properties"]["data"]
    assert "required" not in data and data["properties"]["title"] == NOTES["properties"]["title"]
    assert data["properties"]["body"] == {"anyOf": [NOTES["properties"]["body"], {"type": "null"}]}
    settings_get = doc["paths"]["/v1/collections/settings/documents/{id}"]["get"]
    assert "anyOf" not in _params(settings_get)["id"]["schema"]  # nothing seeded there


def test_a_user_sends_no_owner_id_on_the_concrete_paths_the_admin_may() -> None:
    user = narrowed(_served(), SCHEMAS)
    admin = narrowed(_served(), SCHEMAS, admin=True)
    body = "/v1/collections/notes/documents"
    owner = [d["paths"][body]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
             ["owner_id"] for d in (user, admin)]
    assert owner[0] == {"type": "null"} and owner[1]["type"] == ["string", "null"]


def test_each_batch_write_names_a_collection_with_a_fitting_body() -> None:
    doc = narrowed(_served(), SCHEMAS, existing={"notes": ["n1"]})
    items = doc["paths"]["/v1/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "properties"]["writes"]["items"]["anyOf"]
    by_collection = {item["properties"]["collection"]["const"]: item for item in items}
    assert set(by_collection) == {"notes", "settings"}
    assert by_collection["notes"]["properties"]["data"] == NOTES
    assert by_collection["notes"]["properties"]["id"]["anyOf"][0] == {"enum": ["n1"]}
    assert by_collection["notes"]["properties"]["if_match"] == {"type": "null"}


def _links_renamed(responses: dict[str, Any], name: str) -> dict[str, Any]:
    out = copy.deepcopy(responses)
    for answer in out.values():
        if "links" in answer:
            answer["links"] = {f"{target}__{name}": {**link, "operationId": f"{link['operationId']}__{name}",
                                                     "parameters": {"id": link["parameters"]["id"]}}
                               for target, link in answer["links"].items()}
    return out
