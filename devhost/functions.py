"""Load a Functions app (a `df.DFApp`) and index its functions by binding, as the Functions host does."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

KIND_ORCHESTRATION = "orchestrationTrigger"
KIND_ACTIVITY = "activityTrigger"
KIND_ENTITY = "entityTrigger"
KIND_HTTP = "httpTrigger"
KIND_EVENT_HUB = "eventHubTrigger"
KIND_TIMER = "timerTrigger"
KIND_EVENT_GRID = "eventGridTrigger"
BINDING_DURABLE_CLIENT = "durableClient"
KNOWN_TRIGGER_KINDS = (
    KIND_ORCHESTRATION,
    KIND_ACTIVITY,
    KIND_ENTITY,
    KIND_HTTP,
    KIND_EVENT_HUB,
    KIND_TIMER,
    KIND_EVENT_GRID,
)

_INDEX_ATTRIBUTE = "_devhost_function_index"
# The trigger attribute that renames a durable function (the extension prefers it over the function name).
_DURABLE_NAME_KEYS = {KIND_ORCHESTRATION: "orchestration", KIND_ACTIVITY: "activity", KIND_ENTITY: "entityName"}


class AppLoadError(Exception):
    """The app module could not be imported or holds no FunctionApp."""


@dataclass(frozen=True)
class FunctionEntry:
    """One indexed function: its name, trigger kind, bindings (as the host sees them), callable, `@app.retry`."""

    name: str
    kind: str
    bindings: tuple[dict[str, Any], ...]
    callable: Callable[..., Any]
    durable_name: str
    retry: dict[str, Any] | None = None

    @property
    def trigger(self) -> dict[str, Any]:
        """The trigger binding."""
        return next(b for b in self.bindings if b.get("type") == self.kind)

    @property
    def client_parameter(self) -> str | None:
        """The parameter name of the durable client input binding, if the function has one."""
        for binding in self.bindings:
            if binding.get("type") == BINDING_DURABLE_CLIENT:
                return str(binding["name"])
        return None

    @property
    def trigger_parameter(self) -> str:
        """The parameter name the trigger value is passed as."""
        return str(self.trigger["name"])


@dataclass
class FunctionIndex:
    """Every function of one app, found by name or by trigger kind."""

    app: Any
    module: ModuleType | None = None
    _by_name: dict[str, FunctionEntry] = field(default_factory=dict)
    _durable: dict[tuple[str, str], FunctionEntry] = field(default_factory=dict)

    def add(self, entry: FunctionEntry) -> None:
        self._by_name[entry.name] = entry
        if entry.kind in _DURABLE_NAME_KEYS:
            self._durable[(entry.kind, entry.durable_name.lower())] = entry

    def get(self, name: str) -> FunctionEntry | None:
        """The function registered under this function name."""
        return self._by_name.get(name)

    def of_kind(self, kind: str) -> list[FunctionEntry]:
        """Every function whose trigger is `kind`, in registration order."""
        return [entry for entry in self._by_name.values() if entry.kind == kind]

    def durable(self, kind: str, name: str) -> FunctionEntry | None:
        """An orchestrator, activity or entity by its durable name (case-insensitive, as in the extension)."""
        return self._durable.get((kind, name.lower()))

    def orchestrator(self, name: str) -> FunctionEntry | None:
        return self.durable(KIND_ORCHESTRATION, name)

    def activity(self, name: str) -> FunctionEntry | None:
        return self.durable(KIND_ACTIVITY, name)

    def entity(self, name: str) -> FunctionEntry | None:
        return self.durable(KIND_ENTITY, name)

    def __iter__(self) -> Iterator[FunctionEntry]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)


APP_FILE_NAME = "function_app.py"


def _import_module(spec: str) -> ModuleType:
    path = Path(spec)
    if path.is_dir():  # a function app's root folder, as the host is given it: it loads function_app.py there
        path = path / APP_FILE_NAME
        spec = str(path)
    if spec.endswith(".py") or path.is_file():
        resolved = path.resolve()
        if not resolved.is_file():
            raise AppLoadError(f"app file not found: {spec}")
        folder = str(resolved.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        if resolved.stem in sys.modules and getattr(sys.modules[resolved.stem], "__file__", None) == str(resolved):
            return sys.modules[resolved.stem]
        module_spec = importlib.util.spec_from_file_location(resolved.stem, resolved)
        if module_spec is None or module_spec.loader is None:
            raise AppLoadError(f"cannot import {spec}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[resolved.stem] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[resolved.stem]
            raise
        return module
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    return importlib.import_module(spec)


def _find_app(module: ModuleType) -> Any:
    import azure.functions as func

    apps = [value for value in vars(module).values() if isinstance(value, func.FunctionRegister)]
    if not apps:
        raise AppLoadError(f"module {module.__name__} has no module-level FunctionApp (df.DFApp)")
    return apps[0]


def index_app(app: Any, module: ModuleType | None = None) -> FunctionIndex:
    """Index an already-built FunctionApp the way the worker indexes it (once: `get_functions` is single-use)."""
    cached = getattr(app, _INDEX_ATTRIBUTE, None)
    if isinstance(cached, FunctionIndex):
        return cached
    index = FunctionIndex(app=app, module=module)
    for function in app.get_functions():
        bindings = tuple(json.loads(raw) for raw in function.get_raw_bindings())
        trigger_type = function.get_trigger().get_binding_name()
        name = function.get_function_name()
        trigger: dict[str, Any] = next((b for b in bindings if b.get("type") == trigger_type), {})
        durable_key = _DURABLE_NAME_KEYS.get(trigger_type)
        durable_name = (trigger.get(durable_key) if durable_key else None) or name
        retry = function.get_settings_dict("retry_policy")
        entry = FunctionEntry(name, trigger_type, bindings, function.get_user_function(), str(durable_name), retry)
        index.add(entry)
    setattr(app, _INDEX_ATTRIBUTE, index)
    return index


def load_app(spec: str) -> FunctionIndex:
    """Import `spec` (a dotted module, a .py path or an app folder), find its FunctionApp and index its functions.

    Any exception raised while importing the app (a syntax error, a failing module-level statement) becomes an
    AppLoadError that names it; the worker reports such an app as failing to index.
    """
    try:
        module = _import_module(spec)
    except AppLoadError:
        raise
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        raise AppLoadError(f"cannot import {spec}: {detail}") from exc
    return index_app(_find_app(module), module)
