"""HTTP trigger routing (Functions route templates) and aiohttp <-> `azure.functions` request/response conversion."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from aiohttp import web
from multidict import CIMultiDict

from devhost.triggers import FunctionSpec

DEFAULT_ROUTE_PREFIX = "api"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
CONTENT_TYPE = "Content-Type"
_PARAMETER = re.compile(
    r"^\{(?P<star>\*)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<constraint>:[^}?=]+)?(?P<optional>\?)?\}$"
)
_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "alpha": r"[A-Za-z]+",
    "bool": r"(?i:true|false)",
    "guid": r"[0-9A-Fa-f]{8}-?(?:[0-9A-Fa-f]{4}-?){3}[0-9A-Fa-f]{12}",
    "double": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
}


def compile_route(template: str) -> re.Pattern[str]:
    """A regex for an ASP.NET-style route template: `items/{id:int}`, `{name?}`, `files/{*path}`.

    Literal segments match case-insensitively, as the host's router does. Unknown constraints match any segment.
    """
    parts: list[str] = []
    for segment in template.strip("/").split("/"):
        param = _PARAMETER.match(segment)
        if param is None:
            parts.append("/" + "".join(f"(?i:{re.escape(ch)})" if ch.isalpha() else re.escape(ch) for ch in segment))
            continue
        name = param["name"]
        if param["star"]:
            parts.append(f"(?:/(?P<{name}>.*))?")
            continue
        constraint = (param["constraint"] or ":")[1:].split("(")[0]
        body = _CONSTRAINTS.get(constraint.lower(), r"[^/]+")
        group = f"/(?P<{name}>{body})"
        parts.append(f"(?:{group})?" if param["optional"] else group)
    return re.compile("^" + "".join(parts) + "/?$")


@dataclass(frozen=True)
class HttpRoute:
    """One HTTP-triggered function: its route pattern and allowed methods (None: any)."""

    spec: FunctionSpec
    pattern: re.Pattern[str]
    methods: frozenset[str] | None

    @classmethod
    def from_spec(cls, spec: FunctionSpec) -> HttpRoute:
        template = str(spec.trigger.get("route") or spec.name)
        methods = spec.trigger.get("methods")
        allowed = frozenset(str(method).upper() for method in methods) if methods else None
        return cls(spec=spec, pattern=compile_route(template), methods=allowed)

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Route parameters when `path` (after the prefix, with a leading slash) and `method` match."""
        if self.methods is not None and method.upper() not in self.methods:
            return None
        found = self.pattern.match(path)
        if found is None:
            return None
        return {key: value for key, value in found.groupdict().items() if value is not None}


class HttpRouter:
    """Finds the function for `/{prefix}/{path}`; literal routes win over parameterised ones, as in ASP.NET."""

    def __init__(self, specs: Iterable[FunctionSpec]) -> None:
        routes = [HttpRoute.from_spec(spec) for spec in specs]
        self._routes = sorted(routes, key=lambda route: route.pattern.pattern.count("(?P<"))

    def resolve(self, method: str, path: str) -> tuple[FunctionSpec, dict[str, str]] | None:
        for route in self._routes:
            params = route.match(method, "/" + path.strip("/"))
            if params is not None:
                return route.spec, params
        return None


async def to_functions_request(request: web.Request, route_params: dict[str, str]) -> func.HttpRequest:
    """The `azure.functions.HttpRequest` the worker builds: absolute URL, headers, query, route params, body."""
    body = await request.read()
    return func.HttpRequest(
        method=request.method,
        url=str(request.url),
        headers={key: value for key, value in request.headers.items()},
        params={key: request.query[key] for key in request.query},
        route_params=route_params,
        body=body,
    )


def to_aiohttp_response(result: Any) -> web.Response:
    """Convert what the function returned, as the worker's `http` output converter does."""
    if isinstance(result, str):
        return web.Response(status=200, body=result.encode(), headers={CONTENT_TYPE: TEXT_CONTENT_TYPE})
    if isinstance(result, func.HttpResponse):
        headers: CIMultiDict[str] = CIMultiDict()
        for key, value in result.headers.items():
            headers.add(key, value)
        if CONTENT_TYPE not in headers:
            mimetype = result.mimetype or "text/plain"
            content_type = f"{mimetype}; charset={result.charset}" if mimetype.startswith("text/") else mimetype
            headers[CONTENT_TYPE] = content_type
        return web.Response(status=int(result.status_code), body=result.get_body() or b"", headers=headers)
    if result is None:
        return web.Response(status=204)
    raise TypeError(f"an HTTP function must return azure.functions.HttpResponse or str, not {type(result).__name__}")
