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
