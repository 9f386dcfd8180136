"""Reading one YAML value of a policy: node in, value out, or `Invalid` with a message that
says what is wrong and what would be accepted. The reader adds the line and the dotted path."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from enum import Enum

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .matching import ANY_METHOD, KNOWN_METHODS, HostPattern, PathPattern

_HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


class Invalid(Exception):
    """A value that cannot be used; the message says why and what would be accepted."""


def line_of(node: Node) -> int:
    return node.start_mark.line + 1


def describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag.endswith(":null"):
        return "an empty value"
    return f"'{node.value}'"


def choices(values: Iterable[str]) -> str:
    return ", ".join(values)


def did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? " if close else ""


# ---- scalar readers: node -> value, or Invalid ------------------------------------------


def read_text(node: Node) -> str:
    if not isinstance(node, ScalarNode) or node.tag.endswith(":null"):
        raise Invalid(f"expected a text value, got {describe(node)}")
    return node.value


def enum_reader(enum: type[Enum]) -> Callable[[Node], Enum]:
    allowed = [member.value for member in enum]

    def read(node: Node) -> Enum:
        # The raw scalar text, whatever YAML resolved it to: `faces: off` is the word off.
        if isinstance(node, ScalarNode) and node.value.lower() in allowed:
            return enum(node.value.lower())
        hint = did_you_mean(node.value.lower(), allowed) if isinstance(node, ScalarNode) else ""
        raise Invalid(f"{describe(node)} is not allowed; {hint}use one of {choices(allowed)}")

    return read


def read_bool(node: Node) -> bool:
    if isinstance(node, ScalarNode) and node.tag.endswith(":bool"):
        if node.value.lower() in ("true", "false"):
            return node.value.lower() == "true"
        raise Invalid(f"'{node.value}' is ambiguous in YAML; write true or false")
    raise Invalid(f"expected true or false, got {describe(node)}")


# PyYAML's own scalar constructors, so 50_000_000, 0x10 and 1.5e3 mean what YAML says they do.
YAML_SCALARS = yaml.constructor.SafeConstructor()


def number(node: Node, accept_fractions: bool) -> int | float:
    kinds = (":int", ":float") if accept_fractions else (":int",)
    if isinstance(node, ScalarNode) and node.tag.endswith(kinds):
        if node.tag.endswith(":int"):
            return YAML_SCALARS.construct_yaml_int(node)
        return YAML_SCALARS.construct_yaml_float(node)
    kind = "a number" if accept_fractions else "a whole number (underscores allowed: 50_000_000)"
    if isinstance(node, ScalarNode) and node.tag.endswith(":str"):
        if node.style in ("'", '"') and _unquoted_tag(node.value).endswith(kinds):
            raise Invalid(f"expected a number, got the text '{node.value}'; remove the quotes")
        unit = _NUMBER_WITH_UNIT.fullmatch(node.value.strip())
        if unit:
            raise Invalid(f"expected {kind}, got '{node.value}'; write the number alone, without '{unit.group(2)}' (the key names the unit)")
    raise Invalid(f"expected {kind}, got {describe(node)}")


_NUMBER_WITH_UNIT = re.compile(r"([0-9][0-9_.]*)\s*([A-Za-z%]+)")


def _unquoted_tag(text: str) -> str:
    """The tag YAML would give `text` written without quotes: is it a number then?"""
    return yaml.resolver.Resolver().resolve(ScalarNode, text, (True, False))


def positive_reader(accept_fractions: bool) -> Callable[[Node], int | float]:
    def read(node: Node) -> int | float:
        value = number(node, accept_fractions)
        if not value > 0 or value == float("inf"):
            raise Invalid(f"must be greater than 0, got {node.value}")
        return float(value) if accept_fractions else value

    return read


def range_reader(
    accept_fractions: bool, low: float, high: float | None = None, low_inclusive: bool = True, multiple: int | None = None
) -> Callable[[Node], int | float]:
    """A number from `low` (inclusive or not) to `high` (inclusive), optionally a multiple of `multiple`."""

    def read(node: Node) -> int | float:
        value = number(node, accept_fractions)
        too_low = value < low if low_inclusive else value <= low
        if too_low or (high is not None and value > high) or value != value:
            lower = f"{'at least' if low_inclusive else 'greater than'} {low:g}"
            wanted = f"from {low:g} to {high:g}" if high is not None and low_inclusive else lower
            if high is not None and not low_inclusive:
                wanted = f"greater than {low:g} and at most {high:g}"
            raise Invalid(f"must be {wanted}, got {node.value}")
        if multiple and value % multiple:
            raise Invalid(f"must be a multiple of {multiple} (the network's input step), got {node.value}")
        return float(value) if accept_fractions else value

    return read


def read_rule_name(node: Node) -> str:
    name = read_text(node).strip()
    if not name or "\n" in name:
        raise Invalid("a rule name is one non-empty line (it appears in audit records)")
    return name


def read_user_name(node: Node) -> str:
    """A proxy-auth user name, as the client sends it (htpasswd or LDAP): compared exactly."""
    name = read_text(node)
    if not name.strip() or name != name.strip() or ":" in name or "\n" in name:
        raise Invalid(f"'{name}' is not a user name: write it as the user logs in to the proxy (not empty, no ':', no spaces around it)")
    return name


def read_host_pattern(node: Node) -> HostPattern:
    raw = read_text(node).strip()
    text = raw.lower().rstrip(".")
    if text == "*":
        raise Invalid("'*' alone would decrypt every host; list the hosts to protect")
    if "://" in text:
        raise Invalid(f"'{raw}': write the host name only, without '{raw.split('://')[0]}://'")
    if "/" in text:
        raise Invalid(f"'{raw}': write the host name only; paths go in a rule's paths")
    if ":" in text:
        raise Invalid(f"'{raw}': ports are ignored when matching; write '{text.split(':')[0]}'")
    name = text[2:] if text.startswith("*.") else text
    labels = name.split(".")
    if not all(_HOST_LABEL.fullmatch(label.replace("*", "x")) for label in labels):
        raise Invalid(f"'{raw}' is not a valid host name (letters, digits and '-' between dots)")
    if any(label.count("*") > 1 for label in labels):
        raise Invalid(f"'{raw}': one '*' per label at most")
    if text.startswith("*.") and len(labels) == 1:
        raise Invalid(f"'{raw}' is too broad: it would match every '.{name}' host")
    # The registered domain must be written out: '*.com' or 'api.*.com' would match the world.
    if (text.startswith("*.") or "*" in name) and (len(labels) < 2 or "*" in "".join(labels[-2:])):
        raise Invalid(f"'{raw}' is too broad: write the last two labels out, as in '*.example.com' or 'api.*.example.com'")
    return HostPattern(text)


def read_path_pattern(node: Node) -> PathPattern:
    text = read_text(node).strip()
    if not text.startswith(("/", "*")):
        raise Invalid(f"'{text}': a path starts with '/' (host names go in hosts)")
    if "?" in text or "#" in text:
        raise Invalid(f"'{text}': paths are matched without the query string; remove what follows '?'")
    if any(character.isspace() for character in text):
        raise Invalid(f"'{text}': a path has no spaces")
    return PathPattern.from_glob(text)


def read_method(node: Node) -> str:
    method = read_text(node).strip().upper()
    if method == ANY_METHOD or method in KNOWN_METHODS:
        return method
    hint = did_you_mean(method, KNOWN_METHODS)
    allowed = f"{choices(KNOWN_METHODS)}, or '*' for any"
    raise Invalid(f"'{node.value}' is not an HTTP method; {hint}use one of {allowed}")

