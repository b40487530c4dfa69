"""App settings traced through the Bicep (function module <- main.bicep <- module outputs) agree with core.settings.

What the Function App gets is followed from `siteConfig.appSettings` in app/function.bicep back through the module
parameter, `var`s, `union(...)` and module outputs, so a setting added anywhere on that path is seen. The app's side
is derived from `core.settings`: the `Settings` fields, the storage connection's suffixes as
`storage_connection_from_env` reads them, and the documented identity-connection conventions of the Functions host.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tree_sitter
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from core.setting_types import storage_connection_from_env
from core.settings import (
    DEFAULT_EVENTHUB_CONNECTION,
    DEFAULT_STORAGE_CONNECTION,
    Settings,
    SettingsError,
    load_settings,
    requirement_problems,
)
from tests.infra.bicep_model import INFRA_DIR, REPO_ROOT, BicepFile, bicep_file, literal, object_properties

FUNCTION_MODULE = "app/function.bicep"
MAIN = "main.bicep"
CONFIGURATION_DOC = REPO_ROOT / "docs" / "configuration.md"
DEPLOY_DOC = REPO_ROOT / "docs" / "deploy.md"
STORAGE_FIELD = "storage"
NAME_PLACEHOLDER = "<name>"
# Functions host / platform settings the app does not read itself: explicit and short on purpose.
PLATFORM_SETTINGS = frozenset(
    {"AzureWebJobsFeatureFlags", "APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"}
)
# Flex Consumption takes the runtime from functionAppConfig.runtime and refuses these as app settings.
FLEX_DEPRECATED_SETTINGS = frozenset({"FUNCTIONS_EXTENSION_VERSION", "FUNCTIONS_WORKER_RUNTIME"})
# Identity-based connections as the Functions host reads them (`<connection>__<suffix>`).
HOST_STORAGE_SUFFIXES = frozenset({"blobServiceUri", "queueServiceUri", "tableServiceUri", "credential", "clientId"})
HOST_EVENT_HUB_SUFFIXES = frozenset({"fullyQualifiedNamespace", "credential", "clientId"})
KEY_VAULT_REFERENCE = re.compile(r"@Microsoft\.KeyVault\(SecretUri=\$\{\w+\.outputs\.secretUri\}\)")
SECURE_DECORATOR = "secure"
# The smallest valid environment; each check adds or overrides one variable.
MINIMAL_ENV = {
    "QUALYS_POD": "US2",
    "QUALYS_ACCESS_TOKEN": "token",
    "AZURE_SUBSCRIPTION_ID": "0b7d5e2a-9c41-4f0e-8a3b-6d2f1e0c9b8a",
    "SCANNER_RESOURCE_GROUP": "rg-scanners",
    "SCANNER_LOCATION": "westeurope",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}


@dataclass(frozen=True)
class SettingSource:
    """Where one app setting's value is written: the Bicep file and the value's node."""

    file: BicepFile
    node: tree_sitter.Node

    @property
    def text(self) -> str:
        return (self.node.text or b"").decode()


def _module_file(file: BicepFile, module_name: str) -> BicepFile:
    reference = file.declaration(module_name).reference
    return bicep_file((file.path.parent / reference).resolve().relative_to(INFRA_DIR).as_posix())


def _object_entries(file: BicepFile, node: tree_sitter.Node) -> list[tuple[str, SettingSource]]:
    """An object-valued expression as (setting, source) in order, shadowed entries of `union(...)` included."""
    if node.type == "object":
        return [(key, SettingSource(file, value)) for key, value in object_properties(node)]
    if node.type == "identifier":
        return _object_entries(file, file.variables()[_text(node)])
    if node.type == "call_expression" and _text(node.child_by_field_name("function")) == "union":
        arguments = node.child_by_field_name("arguments")
        return [
            entry for arg in (arguments.named_children if arguments else []) for entry in _object_entries(file, arg)
        ]
    if node.type == "member_expression":  # <module>.outputs.<name>
        inner, output = node.child_by_field_name("object"), node.child_by_field_name("property")
        if inner is not None and _text(inner.child_by_field_name("property")) == "outputs":
            target = _module_file(file, _text(inner.child_by_field_name("object")))
            return _object_entries(target, target.outputs()[_text(output)])
    raise AssertionError(f"{file.relative}: cannot follow app settings through {_text(node)[:80]}")


def _text(node: tree_sitter.Node | None) -> str:
    return "" if node is None else (node.text or b"").decode()


def _traced_entries() -> list[tuple[str, SettingSource]]:
    """Every app setting written on the way to the Function App, in order (a later one of a name wins)."""
    function = bicep_file(FUNCTION_MODULE)
    site = function.declaration("functionApp").node("properties", "siteConfig", "appSettings")
    assert site is not None, "the Function App sets no siteConfig.appSettings"
    assert site.type == "for_statement", "expected `for setting in items(<param>)` over the module parameter"
    loop_source = _text(site.named_children[1])
    parameter = re.fullmatch(r"items\((\w+)\)", loop_source)
    assert parameter, f"unexpected app settings loop source {loop_source}"
    main = bicep_file(MAIN)
    callers = [m for m in main.modules() if m.reference == FUNCTION_MODULE]
    assert len(callers) == 1, f"{MAIN} must use {FUNCTION_MODULE} exactly once"
    argument = callers[0].node("params", parameter.group(1))
    assert argument is not None, f"{MAIN} does not pass {parameter.group(1)}"
    return _object_entries(main, argument)


def _resolved_literal(file: BicepFile, node: tree_sitter.Node | None) -> str | None:
    """A string value known before deployment: a literal, or a var or param default that is one; else None."""
    if node is None:
        return None
    value = literal(node)
    if isinstance(value, str):
        return value
    if node.type == "identifier":
        name = _text(node)
        if name in file.variables():
            return _resolved_literal(file, file.variables()[name])
        if name in file.parameters():
            return _resolved_literal(file, file.parameters()[name].default)
    return None


class _RecordingEnv(Mapping[str, str]):
    """An empty environment that remembers every variable asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _storage_variables(connection: str) -> set[str]:
    """The variables `core.settings` reads for a storage connection named `connection`."""
    recorder = _RecordingEnv()
    storage_connection_from_env(connection, recorder)
    return recorder.asked


def _connection_name(settings: Mapping[str, SettingSource], variable: str, default: str) -> str:
    source = settings.get(variable)
    if source is None:
        return default
    name = _resolved_literal(source.file, source.node)
    assert name, f"{variable} must be a value known before deployment"
    return name


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or any(_is_secret(arg) for arg in typing.get_args(annotation))


def _settings_variables() -> dict[str, FieldInfo]:
    return {name.upper(): info for name, info in Settings.model_fields.items() if name != STORAGE_FIELD}


SECRET_VARIABLES = frozenset(name for name, info in _settings_variables().items() if _is_secret(info.annotation))


@pytest.fixture(scope="module")
def app_settings() -> dict[str, SettingSource]:
    """What the Function App is deployed with: setting -> where its value is written."""
    return dict(_traced_entries())


def test_the_trace_finds_the_settings_of_every_kind(app_settings):
    assert {"QUALYS_POD", "EventHubConnection__fullyQualifiedNamespace", "QUALYS_ACCESS_TOKEN"} <= set(app_settings)
    assert {"QUALYS_ACCESS_TOKEN", "SMTP_PASSWORD", "NOTIFY_WEBHOOK_URL"} <= SECRET_VARIABLES


def test_every_app_setting_is_read_by_the_app_or_the_platform(app_settings):
    storage = _connection_name(app_settings, "RESULTS_STORAGE_CONNECTION", DEFAULT_STORAGE_CONNECTION)
    event_hub = _connection_name(app_settings, "EVENTHUB_CONNECTION", DEFAULT_EVENTHUB_CONNECTION)
    known = (
        set(_settings_variables())
        | _storage_variables(storage)
        | {f"{DEFAULT_STORAGE_CONNECTION}__{suffix}" for suffix in HOST_STORAGE_SUFFIXES}
        | {f"{storage}__{suffix}" for suffix in HOST_STORAGE_SUFFIXES}
        | {f"{event_hub}__{suffix}" for suffix in HOST_EVENT_HUB_SUFFIXES}
        | PLATFORM_SETTINGS
    )
    unknown = sorted(set(app_settings) - known)
    assert unknown == [], f"infra sets app settings nothing reads: {unknown}"
    assert FLEX_DEPRECATED_SETTINGS.isdisjoint(app_settings), "Flex Consumption sets the runtime in functionAppConfig"


def test_every_required_setting_is_set(app_settings):
    required = {name for name, info in _settings_variables().items() if info.is_required()}
    assert required - set(app_settings) == set()
    # Rules spanning variables (Qualys credentials, SMTP with e-mail, ...) can be met with what infra sets.
    assert requirement_problems(lambda name: "set" if name in app_settings else None) == []


def test_the_storage_connection_is_identity_based_and_complete(app_settings):
    connection = _connection_name(app_settings, "RESULTS_STORAGE_CONNECTION", DEFAULT_STORAGE_CONNECTION)
    assert connection not in app_settings, "no storage connection string in Azure: identity only"
    environment = {name: "https://example.invalid" for name in app_settings if name.startswith(connection + "__")}
    environment.pop(f"{connection}__clientId", None)
    environment.pop(f"{connection}__credential", None)
    storage, problems = storage_connection_from_env(connection, environment)
    assert problems == [] and storage is not None and storage.uses_identity


def test_secret_settings_are_key_vault_references_of_secure_parameters():
    entries = _traced_entries()
    secure_params = {
        (source.file.relative, p.name)
        for _, source in entries
        for p in source.file.parameters().values()
        if SECURE_DECORATOR in p.decorators
    }
    secrets = [(name, source) for name, source in entries if name in SECRET_VARIABLES]
    assert {name for name, _ in secrets} <= SECRET_VARIABLES and secrets
    for name, source in secrets:
        values = [n for n in _descendants(source.node) if n.type == "string" and literal(n) != ""]
        assert values, f"{name}: no Key Vault reference"
        for value in values:
            assert KEY_VAULT_REFERENCE.fullmatch(_text(value)[1:-1]), f"{name}: {source.text}"
        used = [p for p in source.file.parameters().values() if _mentions(source.node, p.name)]
        assert used, f"{name}: the reference does not depend on a parameter of {source.file.relative}"
        assert all(SECURE_DECORATOR in p.decorators for p in used), f"{name}: its parameter must be @secure()"
    for name, source in entries:
        if name in SECRET_VARIABLES:
            continue
        leaked = {p for f, p in secure_params if f == source.file.relative and _mentions(source.node, p)}
        assert leaked == set(), f"{name} carries the secure parameter(s) {leaked} as a plain value"


def _descendants(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    yield node
    for child in node.named_children:
        yield from _descendants(child)


def _mentions(node: tree_sitter.Node, identifier: str) -> bool:
    return any(n.type == "identifier" and n.text == identifier.encode() for n in _descendants(node))


def test_values_fixed_before_deployment_are_valid_and_the_apps_defaults(app_settings):
    """Literals, vars and parameter defaults (also azd's `${VAR=default}`) pass the app's validation, and where the
    app has a default of its own, infra's fixed value is that default (one default per setting, not two)."""
    azd_defaults = _azd_parameter_defaults()
    app_defaults = load_settings(MINIMAL_ENV)
    variables = _settings_variables()
    checked = 0
    for name in sorted(set(app_settings) & set(variables)):
        source = app_settings[name]
        candidates = {_resolved_literal(source.file, source.node)}
        if source.node.type == "identifier":
            candidates.add(azd_defaults.get(_text(source.node)))
        for value in candidates - {None, ""}:
            checked += 1
            try:
                loaded = load_settings({**MINIMAL_ENV, name: str(value)})
            except SettingsError as error:
                raise AssertionError(f"{name}={value!r} from infra is refused: {error}") from None
            if not variables[name].is_required() and name not in MINIMAL_ENV:
                field = name.lower()
                assert getattr(loaded, field) == getattr(app_defaults, field), f"{name}: infra default {value!r}"
    assert checked >= 10


def _azd_parameter_defaults() -> dict[str, str]:
    document = json.loads((INFRA_DIR / "main.parameters.json").read_text(encoding="utf-8"))
    defaults = {}
    for name, entry in document["parameters"].items():
        found = re.fullmatch(r"\$\{[A-Z0-9_]+=(.*)\}", str(entry["value"]))
        if found:
            defaults[name] = found.group(1)
    return defaults


def _documented_rows(path: Path) -> dict[str, str]:
    """Variable -> its "Required / default" cell, from the first column of every table in the document."""
    rows: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 2:
            for name in re.findall(r"`([^`]+)`", cells[0]):
                rows[name] = cells[1]
    return rows


def test_configuration_doc_lists_exactly_the_settings_variables():
    rows = _documented_rows(CONFIGURATION_DOC)
    variables = {name for name in rows if not name.startswith(NAME_PLACEHOLDER)}
    assert sorted(set(_settings_variables()) - variables) == [], "undocumented in docs/configuration.md"
    assert sorted(variables - set(_settings_variables())) == [], "documented but not read by core.settings"
    storage_forms = {name for name in rows if name.startswith(NAME_PLACEHOLDER)}
    read = _storage_variables(NAME_PLACEHOLDER)
    assert storage_forms <= read, f"documented storage forms the app does not read: {storage_forms - read}"
    text = CONFIGURATION_DOC.read_text(encoding="utf-8")
    assert all(f"`{name}`" in text or f"`{name.removeprefix(NAME_PLACEHOLDER)}`" in text for name in read)


def test_configuration_doc_defaults_are_the_defaults():
    """A default written as one literal (`20`, `os,sca,secret`) gives the same value as leaving the variable unset."""
    rows = _documented_rows(CONFIGURATION_DOC)
    defaults = load_settings(MINIMAL_ENV)
    compared = 0
    for name in sorted(_settings_variables()):
        documented = re.fullmatch(r"`([^`]*)`", rows[name])
        if documented is None:
            continue
        compared += 1
        explicit = load_settings({**MINIMAL_ENV, name: documented.group(1)})
        field = name.lower()
        assert getattr(explicit, field) == getattr(defaults, field), f"{name}: documented default {rows[name]}"
    assert compared >= 25


def test_deploy_doc_lists_every_azd_parameter():
    """Each `${VARIABLE}` of main.parameters.json is in the parameter table of docs/deploy.md with its parameter."""
    document = json.loads((INFRA_DIR / "main.parameters.json").read_text(encoding="utf-8"))
    rows = [line for line in DEPLOY_DOC.read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    for parameter, entry in document["parameters"].items():
        variable = re.fullmatch(r"\$\{([A-Z0-9_]+)(=.*)?\}", str(entry["value"]))
        assert variable, parameter
        matching = [row for row in rows if f"`{variable.group(1)}`" in row and f"`{parameter}`" in row]
        assert matching, f"docs/deploy.md has no row for {variable.group(1)} ({parameter})"
