"""The OpenAPI description is generated from the registry: every catalog entry is in it."""

from __future__ import annotations

from typing import Any

import yaml
from django.test import Client

from protocol.registry import registry


def test_schema_describes_every_catalog_entry(client: Client, db: Any) -> None:
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    paths = schema["paths"]
    for slug, trigger in registry.triggers.items():
        operation = paths[f"/ifttt/v1/triggers/{slug}"]["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert set(body["properties"]["triggerFields"]["properties"]) == {f.slug for f in trigger.fields}
        item = operation["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"]["items"]
        assert set(item["properties"]) == {i.slug for i in trigger.ingredients} | {"meta"}
        assert operation["security"] == [{"userAuth": []}]
    for slug in registry.actions:
        assert "400" in paths[f"/ifttt/v1/actions/{slug}"]["post"]["responses"]
    for slug in registry.queries:
        assert (
            "cursor"
            in paths[f"/ifttt/v1/queries/{slug}"]["post"]["requestBody"]["content"]["application/json"]["schema"][
                "properties"
            ]
        )
    assert paths["/ifttt/v1/status"]["get"]["security"] == [{"serviceAuth": []}]
    assert schema["components"]["securitySchemes"]["serviceAuth"]["name"] == "IFTTT-Service-Key"


def test_docs_page_loads_without_a_cdn(client: Client, db: Any) -> None:
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    assert "cdn." not in page and "https://" not in page.split("<body")[0]


def test_every_operation_documents_the_errors_it_can_answer(client: Client, db: Any) -> None:
    """What every call with a body can be answered (a bad body, credentials, a body too large) is in the
    schema for every operation, as the fuzz in test_api_fuzz.py holds the server to."""
    schema = yaml.safe_load(client.get("/api/schema/").content)
    paths, components = schema["paths"], schema["components"]["schemas"]
    operations = [
        (f"{method.upper()} {path}", operation)
        for path, item in paths.items()
        if path.startswith(("/ifttt/v1/", "/api/v1/"))
        for method, operation in item.items()
        if method in ("post", "delete")
    ]
    assert len(operations) > 40
    for name, operation in operations:
        documented = set(operation["responses"])
        assert {"400", "401", "413", "415"} <= documented, (name, documented)
    webhook = paths["/ifttt/v1/webhooks/trigger_subscription/fired"]["post"]
    assert {"400", "401", "404"} <= set(webhook["responses"])
    assert webhook["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/FiredWebhook")
    assert "trigger_id" in components["FiredData"]["required"]
    device = paths["/api/v1/device/events"]["post"]
    assert set(device["responses"]) >= {"202", "400", "401", "413"}
    assert len(components["DeviceEventsRequest"]["oneOf"]) == 2
