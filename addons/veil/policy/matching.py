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
    text: str  # normalised: lower case, no trailing dot

    @property
    def is_wildcard(self) -> bool:
        return self.text.startswith("*.")

    @property
    def suffix(self) -> str:
        """The part a wildcard's sub-domains end with, dot included: '.oaiusercontent.com'."""
        return self.text[1:]

    def matches(self, normalised_host: str) -> bool:
        if self.is_wildcard:
            return normalised_host.endswith(self.suffix) and len(normalised_host) > len(self.suffix)
        return normalised_host == self.text

    @property
    def specificity(self) -> int:
        """Higher wins: any exact name beats any wildcard; longer wildcards beat shorter ones."""
        labels = self.text.count(".") + 1
        return labels if self.is_wildcard else 1000 + labels

    def allow_hosts_regex(self) -> str:
        """A regex for mitmproxy's `allow_hosts`, which `re.search`es it (ignoring case) in
        'host:port' strings built from the CONNECT target, the Host header and the TLS SNI.
        Anchored at both ends so 'api.openai.com.evil.com:443' cannot match."""
        # Host patterns hold only letters, digits, '-', '_' and dots, so escaping the dots is
        # enough, and keeps the regexes readable in mitmproxy's option list.
        if self.is_wildcard:
            name = r"(?:[^.:/\s]+\.)+" + _escape_dots(self.suffix[1:])
        else:
            name = _escape_dots(self.text)
        return rf"^{name}\.?(?::\d+)?$"


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


ANY_METHOD = "*"
UPLOAD_METHODS = frozenset({"POST", "PUT", "PATCH"})
KNOWN_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
