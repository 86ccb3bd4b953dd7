"""The JSON Schema (draft-07) of scenario YAML, for editors and `jsonschema`: pydantic's schema
of `Scenario` by alias, reshaped where the YAML is more compact than the model (one-key steps
``{loop: …}``, ``{timer: …}``, ``{wait: {cond, mutex}}``, ``{yield: null}``, ``{draw: …}``,
``{per_thread: […]}``, event writes ``{/path: {file: value}}``); written to
``cfssim.schema.json`` by ``cfssim schema``.
"""

from __future__ import annotations

import json
from typing import Any

from .model import CGROUPS_SCHEMA, Scenario, files_schema

SCHEMA_FILE = "cfssim.schema.json"


def _draft7(node: Any, definitions: dict[str, Any]) -> Any:
    """pydantic's 2020-12 flavour → draft-07: ``$defs`` → ``definitions``, no discriminators."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "discriminator":
                continue
            if key == "$ref":
                out[key] = value.replace("#/$defs/", "#/definitions/")
            else:
                out[key] = _draft7(value, definitions)
        return out
    if isinstance(node, list):
        return [_draft7(item, definitions) for item in node]
    return node


def scenario_json_schema() -> dict[str, Any]:
    """A draft-07 JSON Schema of the YAML scenario shape (for editors and `jsonschema`)."""
    schema = Scenario.model_json_schema(by_alias=True, mode="validation")
    definitions = _draft7(schema.pop("$defs", {}), {})
    loop = definitions["Loop"]
    definitions["Loop"] = {
        "type": "object",
        "title": "Loop",
        "description": loop.get("description", ""),
        "properties": {
            "loop": {k: v for k, v in loop.items() if k not in ("title", "description")}
        },
        "required": ["loop"],
        "additionalProperties": False,
    }
    timer = definitions["Timer"]
    definitions["Timer"] = {
        "type": "object",
        "title": "Timer",
        "description": timer.get("description", ""),
        "properties": {
            "timer": {
                "anyOf": [
                    timer["properties"]["period"],
                    {k: v for k, v in timer.items() if k not in ("title", "description")},
                ]
            }
        },
        "required": ["timer"],
        "additionalProperties": False,
    }
    wait = definitions["CondWait"]
    definitions["CondWait"] = {
        "type": "object",
        "title": "CondWait",
        "description": wait.get("description", ""),
        "properties": {
            "wait": {k: v for k, v in wait.items() if k not in ("title", "description")}
        },
        "required": ["wait"],
        "additionalProperties": False,
    }
    yield_count = definitions["Yield"]["properties"]["yield"]
    definitions["Yield"]["properties"]["yield"] = {"anyOf": [yield_count, {"type": "null"}]}
    draw = definitions["Draw"]
    values = draw["properties"]["values_ns"]
    definitions["Draw"] = {
        "type": "object",
        "title": "Draw",
        "description": draw.get("description", ""),
        "properties": {
            "draw": {
                "type": "object",
                "minProperties": 1,
                "maxProperties": 1,
                "properties": {kind: values for kind in draw["properties"]["kind"]["enum"]},
                "additionalProperties": False,
            }
        },
        "required": ["draw"],
        "additionalProperties": False,
    }
    per_thread = definitions["PerThread"]
    definitions["PerThread"] = {
        "type": "object",
        "title": "PerThread",
        "description": per_thread.get("description", ""),
        "properties": {"per_thread": per_thread["properties"]["threads"]},
        "required": ["per_thread"],
        "additionalProperties": False,
    }
    definitions["Write"] = {
        "type": "object",
        "title": "Write",
        "description": definitions["Write"]["description"],
        "minProperties": 1,
        "maxProperties": 1,
        "propertyNames": CGROUPS_SCHEMA["propertyNames"],
        "additionalProperties": {**files_schema(), "type": "object", "minProperties": 1},
    }
    body = _draft7(schema, definitions)
    body["properties"]["name"]["description"] = "defaults to the file name without .yaml"
    body["required"] = [key for key in body.get("required", []) if key != "name"]
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        **body,
        "definitions": definitions,
    }


def schema_text() -> str:
    """The schema as written to ``cfssim.schema.json``."""
    return json.dumps(scenario_json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
