"""pystac's JSON-schema validator, offline: the core schemas pystac ships and the extension schemas of
``tests/data/stac-schemas/`` (see its README), and nothing fetched; a schema it lacks is an error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pystac
from pystac.validation.stac_validator import JsonSchemaSTACValidator

SCHEMAS = Path(__file__).parent / "stac-schemas"


class OfflineValidator(JsonSchemaSTACValidator):
    """Validates with the shipped schemas only; refuses to fetch any other."""

    def __init__(self) -> None:
        super().__init__()
        for path in sorted(SCHEMAS.glob("*.json")):
            schema = json.loads(path.read_text(encoding="utf-8"))
            self.schema_cache[schema["$id"]] = schema

    def _get_schema(self, schema_uri: str) -> dict[str, Any]:
        if schema_uri not in self.schema_cache:
            raise LookupError(f"schema {schema_uri!r} is not shipped with the tests "
                              "(tests/data/stac-schemas/)")
        return self.schema_cache[schema_uri]


def validate_offline(document: dict[str, Any]) -> list[str]:
    """Open ``document`` as a pystac Item and validate it; return the schema URIs it was checked against.

    Raises:
        pystac.errors.STACValidationError: the Item does not pass.
        LookupError: it declares an extension whose schema is not shipped.
    """
    item = pystac.Item.from_dict(document)
    return item.validate(validator=OfflineValidator())
