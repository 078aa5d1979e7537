"""The OpenAPI description of the Service API, as IFTTT calls it, generated from the registry.

drf-spectacular describes the project's other endpoints from their views. The IFTTT endpoints take
a slug in the URL and a body whose shape depends on it, so this hook replaces their generic
entries with one path per trigger, action and query, each with its own fields and ingredients.
"""

from __future__ import annotations

from typing import Any

from .registry import Declaration, FieldSpec, Ingredient, registry

Schema = dict[str, Any]
V1 = "/ifttt/v1"

_ERROR = {"$ref": "#/components/schemas/ErrorResponse"}
_USER: list[dict[str, list[str]]] = [{"userAuth": []}]
_SERVICE: list[dict[str, list[str]]] = [{"serviceAuth": []}]
_INGREDIENT_TYPES: dict[str, Schema] = {
    "string": {"type": "string"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date-time"},
}


_LIMIT: Schema = {
    "type": "integer",
    "minimum": 0,
    "default": 50,
    "description": "How many items at most; default 50. More than 1000 is read as 1000.",
}


def _json(schema: Schema, description: str = "") -> Schema:
    return {"description": description or "OK", "content": {"application/json": {"schema": schema}}}


_ERROR_TEXTS = {
    400: "A bad body or field, named in the message (for an action, also a SKIP: it can never succeed)",
    401: "Missing or invalid credentials",
    404: "Unknown slug or field",
    413: "The body is larger than the service accepts",
    415: "The body is not JSON (send Content-Type: application/json)",
    503: "The service cannot serve IFTTT right now",
}
# What any call with a body can be answered, whatever the endpoint: every POST parses its body.
_BODY_ERRORS = (400, 401, 413, 415)


def _errors(*codes: int) -> dict[str, Schema]:
    return {str(code): _json(_ERROR, _ERROR_TEXTS[code]) for code in codes}


def _fields_object(fields: tuple[FieldSpec, ...]) -> Schema:
    properties = {f.slug: {"type": "string", "title": f.label, "description": f.helper_text or f.label} for f in fields}
    required = [f.slug for f in fields if f.required]
    return {"type": "object", "properties": properties, **({"required": required} if required else {})}


def _ingredients(ingredients: tuple[Ingredient, ...]) -> Schema:
    return {
        "type": "object",
        "properties": {
            i.slug: {**_INGREDIENT_TYPES[i.kind], "title": i.label, "example": i.example} for i in ingredients
        },
    }


def _operation(
    spec: Declaration, op: str, summary: str, request: Schema, responses: dict[str, Schema], tag: str
) -> Schema:
    return {
        "post": {
            "operationId": f"{tag}_{spec.slug}_{op}",
            "summary": summary,
            "description": spec.description,
            "tags": [tag],
            "security": _USER,
            "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
            "responses": responses,
        }
    }


def _options_path(spec: Declaration, field: FieldSpec, tag: str) -> Schema:
    return _operation(
        spec,
        f"{field.slug}_options",
        f"Options for {field.label}",
        {"type": "object"},
        {"200": _json({"$ref": "#/components/schemas/OptionsResponse"}), **_errors(*_BODY_ERRORS, 404)},
        tag,
    )


def _catalog_paths() -> dict[str, Schema]:
    paths: dict[str, Schema] = {}
    for slug, trigger in registry.triggers.items():
        item = {
            "type": "object",
            "properties": {
                **_ingredients(trigger.ingredients)["properties"],
                "meta": {"$ref": "#/components/schemas/TriggerEventMeta"},
            },
            "required": ["meta"],
        }
        request = {
            "type": "object",
            "properties": {
                "trigger_identity": {"type": "string", "maxLength": 255},
                "triggerFields": _fields_object(trigger.fields),
                "limit": _LIMIT,
                "user": {"$ref": "#/components/schemas/User"},
                "ifttt_source": {"$ref": "#/components/schemas/IftttSource"},
            },
            **({"required": ["triggerFields"]} if trigger.fields else {}),
        }
        paths[f"{V1}/triggers/{slug}"] = _operation(
            trigger,
            "poll",
            f"Trigger: {trigger.label}",
            request,
            {
                "200": _json({"type": "object", "properties": {"data": {"type": "array", "items": item}}}),
                **_errors(*_BODY_ERRORS, 404),
            },
            "triggers",
        )
        for field in trigger.fields:
            if field.options is not None:
                paths[f"{V1}/triggers/{slug}/fields/{field.slug}/options"] = _options_path(trigger, field, "triggers")
            paths[f"{V1}/triggers/{slug}/fields/{field.slug}/validate"] = _operation(
                trigger,
                f"{field.slug}_validate",
                f"Validate {field.label}",
                {"type": "object", "properties": {"value": {"type": "string"}}, "required": ["value"]},
                {"200": _json({"$ref": "#/components/schemas/ValidationResponse"}), **_errors(*_BODY_ERRORS, 404)},
                "triggers",
            )
        if trigger.fields:
            contextual = _operation(
                trigger,
                "validate",
                "Validate all fields",
                {"type": "object", "properties": {"values": _fields_object(trigger.fields)}},
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "data": {
                                    "type": "object",
                                    "additionalProperties": {"$ref": "#/components/schemas/Validation"},
                                }
                            },
                        }
                    ),
                    **_errors(*_BODY_ERRORS, 404),
                },
                "triggers",
            )
            paths[f"{V1}/triggers/{slug}/validate"] = contextual
            # The OpenAPI file's path for the same call: same operation, its own id.
            paths[f"{V1}/triggers/{slug}/fields/validate"] = {
                "post": {**contextual["post"], "operationId": f"triggers_{slug}_fields_validate"}
            }
        paths[f"{V1}/triggers/{slug}/trigger_identity/{{trigger_identity}}"] = {
            "delete": {
                "operationId": f"triggers_{slug}_identity_delete",
                "summary": "Forget a trigger identity (no Applet uses it any more)",
                "tags": ["triggers"],
                "security": _USER,
                "parameters": [
                    {"name": "trigger_identity", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": _json({"type": "object"}), **_errors(*_BODY_ERRORS, 404)},
            }
        }
    for slug, action in registry.actions.items():
        paths[f"{V1}/actions/{slug}"] = _operation(
            action,
            "run",
            f"Action: {action.label}",
            {
                "type": "object",
                "properties": {
                    "actionFields": _fields_object(action.fields),
                    "user": {"$ref": "#/components/schemas/User"},
                    "ifttt_source": {"$ref": "#/components/schemas/IftttSource"},
                },
                "required": ["actionFields"],
            },
            {"200": _json({"$ref": "#/components/schemas/ActionResponse"}), **_errors(*_BODY_ERRORS, 404)},
            "actions",
        )
        for field in action.fields:
            if field.options is not None:
                paths[f"{V1}/actions/{slug}/fields/{field.slug}/options"] = _options_path(action, field, "actions")
    for slug, query in registry.queries.items():
        paths[f"{V1}/queries/{slug}"] = _operation(
            query,
            "perform",
            f"Query: {query.label}",
            {
                "type": "object",
                "properties": {
                    "queryFields": _fields_object(query.fields),
                    "limit": _LIMIT,
                    "cursor": {"type": "string", "maxLength": 2000},
                    "user": {"$ref": "#/components/schemas/User"},
                },
                **({"required": ["queryFields"]} if query.fields else {}),
            },
            {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "data": {"type": "array", "items": _ingredients(query.ingredients)},
                            "cursor": {"type": "string", "description": "Absent on the last page."},
                        },
                    }
                ),
                **_errors(*_BODY_ERRORS, 404),
            },
            "queries",
        )
        for field in query.fields:
            if field.options is not None:
                paths[f"{V1}/queries/{slug}/fields/{field.slug}/options"] = _options_path(query, field, "queries")
    return paths


def _core_paths() -> dict[str, Schema]:
    return {
        f"{V1}/status": {
            "get": {
                "operationId": "status",
                "summary": "Service status",
                "tags": ["service"],
                "security": _SERVICE,
                "responses": {"200": _json({"type": "object"}, "Available"), **_errors(401, 503)},
            }
        },
        f"{V1}/test/setup": {
            "post": {
                "operationId": "test_setup",
                "summary": "Prepare IFTTT's endpoint tests: a test user's token and samples",
                "tags": ["service"],
                "security": _SERVICE,
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/TestSetupResponse"}),
                    **_errors(*_BODY_ERRORS),
                },
            }
        },
        f"{V1}/user/info": {
            "get": {
                "operationId": "user_info",
                "summary": "The user a token belongs to",
                "tags": ["service"],
                "security": _USER,
                "responses": {"200": _json({"$ref": "#/components/schemas/UserInfoResponse"}), **_errors(401)},
            }
        },
    }


_COMPONENTS: dict[str, Schema] = {
    "ErrorResponse": {
        "type": "object",
        "required": ["errors"],
        "properties": {
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {"message": {"type": "string"}, "status": {"type": "string", "enum": ["SKIP"]}},
                },
            }
        },
    },
    "TriggerEventMeta": {
        "type": "object",
        "required": ["id", "timestamp"],
        "properties": {"id": {"type": "string"}, "timestamp": {"type": "integer", "description": "Unix seconds"}},
    },
    "User": {"type": "object", "properties": {"timezone": {"type": "string", "example": "America/Los_Angeles"}}},
    "IftttSource": {"type": "object", "properties": {"id": {"type": "string"}, "url": {"type": "string"}}},
    "Option": {
        "type": "object",
        "required": ["label"],
        "properties": {
            "label": {"type": "string"},
            "value": {"type": "string"},
            "values": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"label": {"type": "string"}, "value": {"type": "string"}},
                },
            },
        },
    },
    "OptionsResponse": {
        "type": "object",
        "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Option"}}},
    },
    "Validation": {
        "type": "object",
        "required": ["valid"],
        "properties": {"valid": {"type": "boolean"}, "message": {"type": "string"}},
    },
    "ValidationResponse": {"type": "object", "properties": {"data": {"$ref": "#/components/schemas/Validation"}}},
    "ActionResponse": {
        "type": "object",
        "properties": {
            "data": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1,
                "items": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {"id": {"type": "string"}, "url": {"type": "string"}},
                },
            }
        },
    },
    "UserInfoResponse": {
        "type": "object",
        "properties": {
            "data": {
                "type": "object",
                "required": ["id", "name"],
                "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "url": {"type": "string"}},
            }
        },
    },
    "TestSetupResponse": {
        "type": "object",
        "properties": {
            "data": {
                "type": "object",
                "required": ["samples"],
                "properties": {
                    "accessToken": {"type": "string"},
                    "samples": {
                        "type": "object",
                        "properties": {
                            key: {"type": "object"}
                            for key in (
                                "triggers",
                                "triggerFieldValidations",
                                "actions",
                                "actionRecordSkipping",
                                "queries",
                            )
                        },
                    },
                },
            }
        },
    },
}


def ifttt_paths(result: Schema, generator: Any, request: Any, public: bool) -> Schema:
    """drf-spectacular postprocessing hook: one described path per catalog entry."""
    paths = {
        path: item
        for path, item in result.get("paths", {}).items()
        if not (path.startswith(f"{V1}/") and not path.startswith(f"{V1}/webhooks"))
    }
    paths.update(_core_paths())
    paths.update(_catalog_paths())
    result["paths"] = dict(sorted(paths.items()))
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(_COMPONENTS)
    components.setdefault("securitySchemes", {}).update(
        {
            "serviceAuth": {"type": "apiKey", "in": "header", "name": "IFTTT-Service-Key"},
            "userAuth": {"type": "http", "scheme": "bearer", "description": "OAuth2 access token (scope ifttt)"},
        }
    )
    return result
