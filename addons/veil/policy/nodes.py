"""Walking a YAML node tree and collecting every problem on the way, each with its file,
line and dotted path, instead of stopping at the first: the base of the policy reader (and
of the catalogue's)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import PolicyProblem
from .values import Invalid, choices, describe, did_you_mean, line_of


def join(*parts: str) -> str:
    return ".".join(part for part in parts if part)


class NodeWalker:
    def __init__(self, source: str):
        self.source = source  # the file being read: the policy, or a catalogue file for a while
        self.problems: list[PolicyProblem] = []

    @contextmanager
    def reading(self, source: str) -> Iterator[None]:
        """Problems found meanwhile belong to `source` (a catalogue file)."""
        previous, self.source = self.source, source
        try:
            yield
        finally:
            self.source = previous

    def problem(self, node: Node | None, path: str, message: str) -> None:
        line = line_of(node) if node is not None else 1
        self.problems.append(PolicyProblem(self.source, line, path, message))

    def mapping(self, node: Node, path: str, allowed: Iterable[str] | None) -> dict[str, tuple[Node, Node]]:
        """Key -> (key node, value node). Reports non-mappings, duplicate and unknown keys."""
        if not isinstance(node, MappingNode):
            self.problem(node, path, f"expected a mapping of keys to values, got {describe(node)}")
            return {}
        entries: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node, path, allowed)
            if key is None:
                continue
            if key in entries:
                first = line_of(entries[key][0])
                self.problem(
                    key_node,
                    join(path, key),
                    f"duplicate key (first at line {first}); YAML would silently keep only the last one, so remove one",
                )
                continue
            entries[key] = (key_node, value_node)
        return entries

    def key(self, key_node: Node, path: str, allowed: Iterable[str] | None) -> str | None:
        if not isinstance(key_node, ScalarNode) or key_node.tag.endswith(":null"):
            self.problem(key_node, path, f"keys must be plain names, got {describe(key_node)}")
            return None
        key = key_node.value
        if allowed is not None and key not in allowed:
            allowed = list(allowed)
            hint = did_you_mean(key, allowed)
            self.problem(key_node, join(path, key), f"unknown key; {hint}allowed here: {choices(allowed)}")
            return None
        return key

    def sequence(self, node: Node, path: str, example: str) -> list[Node] | None:
        if not isinstance(node, SequenceNode):
            self.problem(node, path, f"expected a list, e.g. {example}; got {describe(node)}")
            return None
        if not node.value:
            self.problem(node, path, f"the list is empty; list at least one, e.g. {example}")
            return None
        return node.value

    def value(self, reader: Callable[[Node], Any], node: Node, path: str) -> Any:
        try:
            return reader(node)
        except Invalid as invalid:
            self.problem(node, path, str(invalid))
            return None
