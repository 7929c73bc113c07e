"""The error answers every API operation can give, added to the OpenAPI document in one place.

drf-spectacular documents what a view declares, usually only its success. The
answers DRF gives on its own are the same for every view, so this postprocessing
hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]) adds them instead of each view:

1. 403 `{detail}` everywhere: no login, or a role that does not allow it. Never 401:
   SessionAuthentication comes first and has no WWW-Authenticate challenge, so DRF
   answers 403 even to a bad token.
2. 404 `{detail}` where the path has parameters: no such object, or a path that matches
   no route at all (a letter in a numeric id; eventhub/api_errors.py).
3. 400 everywhere: a NUL character in the query or body (eventhub.middleware). Where
   there is a request body, 400 is also DRF's field errors `{field: [messages]}`
   (`non_field_errors` for the body as a whole) or `{detail}` (a body that does not
   parse, or over Django's limits); 415 `{detail}`, a body without a media type or in one
   DRF does not parse.

A 4xx a view declares without a body (`OpenApiResponse(description=...)`) gets the
same shapes; a 400 it declares with its own shape may also be field errors.
tests/security/test_schemathesis_*.py hold the document to it (status codes included).
"""

from __future__ import annotations

from typing import Any

DETAIL = "Detail"
FIELD_ERRORS = "FieldErrors"
_SCHEMAS = {
    DETAIL: {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    FIELD_ERRORS: {
        "type": "object",
        "description": "Messages by field name (`non_field_errors`: the body as a whole); nested fields nest, "
        "or `detail` alone when the body does not parse.",
        "properties": {"detail": {"type": "string"}},
        "additionalProperties": {"anyOf": [{"type": "array"}, {"type": "object"}]},
    },
}
_WRITES = ("post", "put", "patch")


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def _bad_request(response: dict[str, Any]) -> dict[str, Any]:
    """A 400 as declared, widened to DRF's field errors."""
    content = response.get("content", {}).get("application/json")
    if content is None:
        return {**response, "content": _json(FIELD_ERRORS)}
    schema = {"anyOf": [content["schema"], {"$ref": f"#/components/schemas/{FIELD_ERRORS}"}]}
    return {**response, "content": {**response["content"], "application/json": {**content, "schema": schema}}}


def add_error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """Postprocessing hook: 400, 403, 404 and 415 where DRF or Django can answer them."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(_SCHEMAS)
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            responses = operation["responses"]
            if method in _WRITES and "requestBody" in operation:
                responses.setdefault("400", {"description": "Invalid input."})
                responses.setdefault(
                    "415", {"description": "A body without a media type, or in one the operation does not read."}
                )
            if any(parameter["in"] == "path" for parameter in operation.get("parameters", [])):
                responses.setdefault("404", {"description": "No such object."})
            responses.setdefault("403", {"description": "Not logged in, or the role does not allow it."})
            # Every operation: a NUL character in the query or body (eventhub.middleware.RefuseNulCharacters).
            responses.setdefault("400", {"description": "Invalid input, or a NUL character in the query or body."})
            for code, response in responses.items():
                if code == "400":
                    responses[code] = _bad_request(response)
                elif code.startswith("4") and "content" not in response:
                    response["content"] = _json(DETAIL)
    return result
