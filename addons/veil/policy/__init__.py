"""The policy: which requests Veil cleans, and how.

Layer rule: `policy` may import `clean` (for the options a rule resolves to); it never
imports `proxy`, `audit` or `cli`. Pure: no mitmproxy, no network.

- `model`: the frozen data (Policy, Service, Route, Rule, Match) and the questions the proxy asks.
- `matching`: host and path patterns.
- `catalogue`: the services Veil knows (config/services/), as data a policy includes by name.
- `reader`: YAML in, a `Policy` out, or one `PolicyError` with every problem and its line.
- `values`: reading one value; `errors`: the error types.
"""

from .catalogue import CATALOGUE_FOLDER, Catalogue, CatalogueEntry, load_catalogue
from .errors import PolicyError, PolicyProblem
from .matching import (
    ANY_METHOD,
    KNOWN_METHODS,
    UPLOAD_METHODS,
    HostPattern,
    PathPattern,
    normalise_host,
)
from .model import (
    CATCH_ALL_SERVICE,
    DEFAULT_POLICY_PATH,
    SUPPORTED_VERSION,
    Action,
    DocumentComments,
    Documents,
    ImageReferences,
    Limits,
    Match,
    OfficeMacros,
    OnError,
    OpaqueFiles,
    Policy,
    Protect,
    Route,
    Rule,
    Service,
    UnknownMembers,
    UnnamedDestinations,
    UnparsedBodies,
)
from .reader import (
    RULE_KEYS,
    SERVICE_KEYS,
    SETTING_KEYS,
    TOP_LEVEL_KEYS,
    load_default_policy,
    load_policy,
    load_policy_text,
)

__all__ = [
    "ANY_METHOD",
    "CATALOGUE_FOLDER",
    "CATCH_ALL_SERVICE",
    "Catalogue",
    "CatalogueEntry",
    "Protect",
    "UnnamedDestinations",
    "load_catalogue",
    "DEFAULT_POLICY_PATH",
    "KNOWN_METHODS",
    "RULE_KEYS",
    "SERVICE_KEYS",
    "SETTING_KEYS",
    "SUPPORTED_VERSION",
    "TOP_LEVEL_KEYS",
    "UPLOAD_METHODS",
    "Action",
    "HostPattern",
    "ImageReferences",
    "Limits",
    "Match",
    "OnError",
    "OpaqueFiles",
    "Documents",
    "DocumentComments",
    "OfficeMacros",
    "UnknownMembers",
    "PathPattern",
    "Policy",
    "PolicyError",
    "PolicyProblem",
    "Route",
    "Rule",
    "Service",
    "UnparsedBodies",
    "load_default_policy",
    "load_policy",
    "load_policy_text",
    "normalise_host",
]
