"""Reads the Bicep files under infra/ with tree-sitter-bicep into small views the infrastructure tests assert on."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tree_sitter
import tree_sitter_bicep

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra"
MAIN_BICEP = INFRA_DIR / "main.bicep"
DEFAULT_TARGET_SCOPE = "resourceGroup"
_LITERAL_KEYWORDS = {"true": True, "false": False, "null": None}


@dataclass(frozen=True)
class Expression:
    """A Bicep expression that is not a plain literal, kept as its source text."""

    text: str


def _text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode()


def literal(node: tree_sitter.Node) -> Any:
    """A Python value for literal nodes (strings without interpolation, numbers, booleans, arrays, objects)."""
    if node.type == "string":
        parts = [child for child in node.named_children if child.type != "string_content"]
        if parts:
            return Expression(_text(node))
        return "".join(_text(child) for child in node.named_children)
    if node.type == "number":
        return int(_text(node))
    if node.type in ("boolean", "null") or _text(node) in _LITERAL_KEYWORDS:
        return _LITERAL_KEYWORDS.get(_text(node), Expression(_text(node)))
    if node.type == "array":
        return [literal(child) for child in node.named_children if child.type != "comment"]
    if node.type == "object":
        return {key: literal(value) for key, value in object_properties(node)}
    return Expression(_text(node))


def object_properties(node: tree_sitter.Node) -> Iterator[tuple[str, tree_sitter.Node]]:
    """(key, value node) of each property of an object node, in source order."""
    for prop in node.named_children:
        if prop.type != "object_property":
            continue
        key_node, value_node = [child for child in prop.named_children if child.type != "comment"][:2]
        key = literal(key_node) if key_node.type == "string" else _text(key_node)
        yield str(key), value_node


def lookup(node: tree_sitter.Node | None, *path: str) -> tree_sitter.Node | None:
    """The value node at `path` inside nested objects, or None."""
    for key in path:
        if node is None or node.type != "object":
            return None
        node = dict(object_properties(node)).get(key)
    return node


@dataclass(frozen=True)
class Declaration:
    """A `resource` or `module` declaration with its body object."""

    kind: str
    name: str
    reference: str
    body: tree_sitter.Node
    conditional: bool
    looped: bool
    file: BicepFile

    @property
    def resource_type(self) -> str:
        """`Microsoft.X/y` of a resource (without the API version); the path of a module."""
        return self.reference.split("@", 1)[0]

    @property
    def existing(self) -> bool:
        """True for `existing` references, which deploy nothing."""
        return self.kind == "existing"

    def node(self, *path: str) -> tree_sitter.Node | None:
        """The value node at `path` in the body."""
        return lookup(self.body, *path)

    def value(self, *path: str) -> Any:
        """The literal value at `path`, an `Expression` for computed values, or None when absent."""
        found = self.node(*path)
        return None if found is None else literal(found)

    def text(self, *path: str) -> str | None:
        """The source text of the value at `path`, or None when absent."""
        found = self.node(*path)
        return None if found is None else _text(found)


@dataclass(frozen=True)
class Parameter:
    """A `param` with its type, default (node) and decorator names."""

    name: str
    type: str
    default: tree_sitter.Node | None
    decorators: tuple[str, ...]


class BicepFile:
    """One parsed .bicep file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.source = path.read_bytes()
        self.tree = _parser().parse(self.source)

    @property
    def relative(self) -> str:
        """Path relative to infra/, e.g. `app/storage.bicep`."""
        return self.path.relative_to(INFRA_DIR).as_posix()

    def syntax_problems(self) -> list[str]:
        """One line per ERROR or MISSING node (empty when the file parses cleanly)."""
        return syntax_problems(self.tree)

    @property
    def target_scope(self) -> str:
        """The file's `targetScope` (Bicep's default is resourceGroup)."""
        for node in self.tree.root_node.named_children:
            if node.type == "target_scope_assignment":
                return str(literal(node.named_children[0]))
        return DEFAULT_TARGET_SCOPE

    def _top_level(self, node_type: str) -> Iterator[tuple[tree_sitter.Node, tuple[str, ...]]]:
        decorators: tuple[str, ...] = ()
        for node in self.tree.root_node.named_children:
            if node.type == "decorators":
                decorators = tuple(_decorator_name(d) for d in node.named_children if d.type == "decorator")
                continue
            if node.type == node_type:
                yield node, decorators
            if node.type != "comment":
                decorators = ()

    def declarations(self) -> list[Declaration]:
        """Every resource and module declaration, in source order."""
        found: list[Declaration] = []
        for node_type, kind in (("resource_declaration", "resource"), ("module_declaration", "module")):
            for node, _ in self._top_level(node_type):
                found.append(self._declaration(node, kind))
        return sorted(found, key=lambda d: d.body.start_byte)

    def _declaration(self, node: tree_sitter.Node, kind: str) -> Declaration:
        name_node, reference_node, *rest = node.named_children
        value = rest[-1]
        conditional, looped = value.type == "if_statement", value.type == "for_statement"
        if conditional or looped:
            inner = [child for child in value.named_children if child.type in ("object", "if_statement")][-1]
            conditional = conditional or inner.type == "if_statement"  # a filtered loop: [for x in y: if (c) {...}]
            value = inner if inner.type == "object" else [c for c in inner.named_children if c.type == "object"][-1]
        if kind == "resource" and any(_text(child) == "existing" for child in node.children):
            kind = "existing"
        return Declaration(kind, _text(name_node), str(literal(reference_node)), value, conditional, looped, self)

    def resources(self, resource_type: str | None = None) -> list[Declaration]:
        """Deployed resources (not `existing` references), optionally of one type."""
        return [
            d
            for d in self.declarations()
            if d.kind == "resource" and (resource_type is None or d.resource_type == resource_type)
        ]

    def declaration(self, name: str) -> Declaration:
        """The resource, existing reference or module with this symbolic name."""
        matches = [d for d in self.declarations() if d.name == name]
        assert matches, f"{self.relative}: no declaration named {name}"
        return matches[0]

    def modules(self) -> list[Declaration]:
        """Module declarations."""
        return [d for d in self.declarations() if d.kind == "module"]

    def variables(self) -> dict[str, tree_sitter.Node]:
        """`var` name -> value node."""
        return {
            _text(node.named_children[0]): node.named_children[-1]
            for node, _ in self._top_level("variable_declaration")
        }

    def parameters(self) -> dict[str, Parameter]:
        """`param` name -> its type, default and decorators."""
        params: dict[str, Parameter] = {}
        for node, decorators in self._top_level("parameter_declaration"):
            name_node, type_node, *rest = node.named_children
            default = rest[-1] if rest else None
            params[_text(name_node)] = Parameter(_text(name_node), _text(type_node), default, decorators)
        return params

    def outputs(self) -> dict[str, tree_sitter.Node]:
        """`output` name -> value node."""
        return {
            _text(node.named_children[0]): node.named_children[-1] for node, _ in self._top_level("output_declaration")
        }


def syntax_problems(tree: tree_sitter.Tree) -> list[str]:
    """Describe every ERROR or MISSING node of a parse tree."""
    problems: list[str] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            row, column = node.start_point
            kind = "missing " + node.type if node.is_missing else "syntax error"
            problems.append(f"line {row + 1}, column {column + 1}: {kind} near {_text(node)[:60]!r}")
        if node.has_error:
            stack.extend(node.children)
    return sorted(problems)


def parse_text(source: str) -> tree_sitter.Tree:
    """Parse Bicep source text."""
    return _parser().parse(source.encode())


def _decorator_name(decorator: tree_sitter.Node) -> str:
    call = decorator.named_children[0]
    return _text(call.named_children[0]) if call.type == "call_expression" else _text(call)


@functools.cache
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_bicep.language()))


@functools.cache
def bicep_files() -> tuple[BicepFile, ...]:
    """Every .bicep file under infra/, parsed once per test session."""
    return tuple(BicepFile(path) for path in sorted(INFRA_DIR.rglob("*.bicep")))


def bicep_file(relative: str) -> BicepFile:
    """One file by its path relative to infra/."""
    for parsed in bicep_files():
        if parsed.relative == relative:
            return parsed
    raise AssertionError(f"infra/{relative} does not exist")
