"""Host and path patterns, and how a request's host and path are matched against them.

Host patterns: `api.openai.com` matches that host only; `*.example.com` matches every
sub-domain at any depth but not `example.com` itself. Path patterns are globs over the whole
path without its query string, where `*` matches any run of characters, `/` included."""

from __future__ import annotations

import re
from dataclasses import dataclass


def normalise_host(host: str) -> str:
    """'API.OpenAI.com.:443' -> 'api.openai.com'; '[::1]:8080' -> '::1'."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


@dataclass(frozen=True)
class HostPattern:
    """`api.openai.com` (exact), `*.example.com` (every sub-domain, at any depth) or a label
    glob such as `bedrock-runtime.*.amazonaws.com` or `*-aiplatform.googleapis.com`, where a
    `*` that is not the leading `*.` stands for one or more characters within ONE label: it
    never crosses a dot, so regions and deployments are covered without a wider net."""

    text: str  # normalised: lower case, no trailing dot

    @property
    def is_wildcard(self) -> bool:
        return self.text.startswith("*.")

    @property
    def is_label_glob(self) -> bool:
        """A `*` inside the name, other than the leading `*.` of a wildcard."""
        return "*" in (self.text[2:] if self.is_wildcard else self.text)

    @property
    def suffix(self) -> str:
        """The part a wildcard's sub-domains end with, dot included: '.oaiusercontent.com'."""
        return self.text[1:]

    def matches(self, normalised_host: str) -> bool:
        if self.is_label_glob:
            return re.fullmatch(self._name_regex(), normalised_host) is not None
        if self.is_wildcard:
            return normalised_host.endswith(self.suffix) and len(normalised_host) > len(self.suffix)
        return normalised_host == self.text

    @property
    def specificity(self) -> int:
        """Higher wins: any exact name beats any glob, a label glob beats any leading
        wildcard, and within a kind more labels win."""
        labels = self.text.count(".") + 1
        if self.is_label_glob:
            return 500 + labels
        return labels if self.is_wildcard else 1000 + labels

    def allow_hosts_regex(self) -> str:
        """A regex for mitmproxy's `allow_hosts`, which `re.search`es it (ignoring case) in
        'host:port' strings built from the CONNECT target, the Host header and the TLS SNI.
        Anchored at both ends so 'api.openai.com.evil.com:443' cannot match."""
        return rf"^{self._name_regex()}\.?(?::\d+)?$"

    def _name_regex(self) -> str:
        # Host patterns hold only letters, digits, '-', '_', dots and '*', so escaping the dots
        # is enough, and keeps the regexes readable in mitmproxy's option list.
        if self.is_wildcard:
            return r"(?:[^.:/\s]+\.)+" + _label_glob(self.suffix[1:])
        return _label_glob(self.text)


def _label_glob(host: str) -> str:
    return _escape_dots(host).replace("*", r"[^.:/\s]+")


def _escape_dots(host: str) -> str:
    return host.replace(".", r"\.")


@dataclass(frozen=True)
class PathPattern:
    text: str
    regex: re.Pattern[str]

    @classmethod
    def from_glob(cls, text: str) -> PathPattern:
        literal_parts = (re.escape(part) for part in text.split("*"))
        return cls(text, re.compile(".*".join(literal_parts), re.DOTALL))

    def matches(self, path: str) -> bool:
        return self.regex.fullmatch(path) is not None

    def covers(self, other: PathPattern) -> bool:
        """True when every path `other` matches is matched by this pattern too. Reading the
        other glob's `*` as a literal character is exact here: only one of our own `*`
        can consume it, and that `*` would equally consume whatever it stands for."""
        return self.matches(other.text)


ANY_METHOD = "*"
UPLOAD_METHODS = frozenset({"POST", "PUT", "PATCH"})
KNOWN_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
