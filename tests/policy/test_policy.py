"""The policy: loading with precise messages, host/path/method matching, allow_hosts regexes."""

import dataclasses
import re
from pathlib import Path
from textwrap import dedent

import pytest
from veil.clean.options import FaceMode, SanitiseOptions
from veil.policy import (
    DEFAULT_POLICY_PATH,
    Action,
    ImageReferences,
    Limits,
    OnError,
    PolicyError,
    UnparsedBodies,
    load_default_policy,
    load_policy,
    load_policy_text,
)

CONFIG = Path(__file__).resolve().parents[2] / "config"


def problems(text: str, source: str = "p.yaml") -> list[str]:
    """Every line of the PolicyError a policy text raises (the test fails if it loads)."""
    with pytest.raises(PolicyError) as caught:
        load_policy_text(dedent(text), source)
    return str(caught.value).splitlines()


def policy(text: str):
    return load_policy_text(dedent(text), "test.yaml")


MINIMAL = """\
version: 1
services:
  svc:
    hosts: ["api.example.com"]
"""


# ---- the default policy -------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_policy():
    return load_default_policy()


def test_the_default_policy_is_the_one_in_config():
    assert DEFAULT_POLICY_PATH == CONFIG / "policy.yaml"


def test_default_policy_cleans_everything_it_protects(default_policy):
    for service in default_policy.services:
        for route in service.routes:
            assert route.rule.action is Action.SANITISE, (service.name, route.name)
            assert route.rule.strip and route.rule.faces is FaceMode.MASK
            assert route.rule.on_error is OnError.BLOCK


# Every host of DESIGN §3 (and research/wire-formats.md §1), with the service it belongs to.
DESIGN_HOSTS = {
    "api.openai.com": "openai-api",
    "chatgpt.com": "chatgpt-web",
    "chat.openai.com": "chatgpt-web",
    "sdmntprwestus.oaiusercontent.com": "chatgpt-web",
    "files.oaiusercontent.com": "chatgpt-web",
    "api.anthropic.com": "anthropic-api",
    "claude.ai": "claude-web",
    "generativelanguage.googleapis.com": "gemini-api",
    "gemini.google.com": "gemini-web",
    "push.clients6.google.com": "gemini-web",
    "content-push.googleapis.com": "gemini-web",
    "copilot.microsoft.com": "copilot-web",
    "www.perplexity.ai": "perplexity-web",
    "perplexity.ai": "perplexity-web",
    "ppl-ai-file-upload.s3.amazonaws.com": "perplexity-web",
    "api.perplexity.ai": "perplexity-api",
    "api.mistral.ai": "mistral-api",
    "chat.mistral.ai": "mistral-web",
    "chat.deepseek.com": "deepseek-web",
    "api.deepseek.com": "deepseek-api",
    "grok.com": "grok-web",
    "api.x.ai": "xai-api",
}

# One real upload request per channel of DESIGN §3: (host, path, method) -> (service, rule).
DESIGN_CHANNELS = [
    ("api.openai.com", "/v1/chat/completions", "POST", "openai-api", "api"),
    ("api.openai.com", "/v1/uploads/upload_abc/parts", "POST", "openai-api", "upload-parts"),
    ("chatgpt.com", "/backend-api/files", "POST", "chatgpt-web", "app"),
    ("sdmntpreastus.oaiusercontent.com", "/files/0a1b/raw?se=2026&sig=x", "PUT", "chatgpt-web", "blob-upload"),
    ("api.anthropic.com", "/v1/messages", "POST", "anthropic-api", "api"),
    ("claude.ai", "/api/0f3c-org/upload", "POST", "claude-web", "upload"),
    ("claude.ai", "/api/organizations/o/conversations/c/wiggle/upload-file", "POST", "claude-web", "upload"),
    ("generativelanguage.googleapis.com", "/v1/models/gemini-3:generateContent", "POST", "gemini-api", "api"),
    ("generativelanguage.googleapis.com", "/upload/v1/files?upload_id=x", "PUT", "gemini-api", "file-upload"),
    ("push.clients6.google.com", "/upload/", "POST", "gemini-web", "upload"),
    ("content-push.googleapis.com", "/upload", "POST", "gemini-web", "upload"),
    ("copilot.microsoft.com", "/c/api/attachments", "POST", "copilot-web", "attachments"),
    ("ppl-ai-file-upload.s3.amazonaws.com", "/", "POST", "perplexity-web", "app"),
    ("chat.mistral.ai", "/api/trpc/file.uploadFile?batch=1", "POST", "mistral-web", "app"),
    ("chat.deepseek.com", "/api/v0/file/upload_file", "POST", "deepseek-web", "upload"),
    ("grok.com", "/rest/app-chat/upload-file", "POST", "grok-web", "upload"),
    ("api.x.ai", "/v1/responses", "POST", "xai-api", "api"),
]

UNRELATED_HOSTS = [
    "example.com",
    "api.openai.com.evil.com",
    "notclaude.ai",
    "claude.ai.evil.com",
    "evilchatgpt.com",
    "openai.com",
    "oaiusercontent.com",  # a wildcard covers sub-domains only
    "xoaiusercontent.com",
    "google.com",
    "s3.amazonaws.com",
    "other-bucket.s3.amazonaws.com",
    "blob.core.windows.net",
]


@pytest.mark.parametrize("host, service", sorted(DESIGN_HOSTS.items()))
def test_every_design_host_belongs_to_its_service(default_policy, host, service):
    assert default_policy.protects_host(host)
    assert default_policy.match(host, "/any/path", "POST").service == service


@pytest.mark.parametrize("host, path, method, service, rule", DESIGN_CHANNELS)
def test_every_design_channel_is_cleaned_by_the_expected_rule(default_policy, host, path, method, service, rule):
    match = default_policy.match(host, path, method)
    assert (match.service, match.rule_name) == (service, rule)
    assert match.rule.action is Action.SANITISE


# The flows that declare the file size before the bytes keep the length by default.
SIZE_DECLARED_FIRST = {
    ("openai-api", "upload-parts"), ("chatgpt-web", "app"), ("chatgpt-web", "blob-upload"), ("claude-web", "upload"),
    ("gemini-api", "file-upload"), ("gemini-web", "upload"), ("perplexity-web", "app"),
}  # fmt: skip


@pytest.mark.parametrize("host, path, method, service, rule", DESIGN_CHANNELS)
def test_preserve_length_is_on_where_the_size_is_declared_first(default_policy, host, path, method, service, rule):
    match = default_policy.match(host, path, method)
    expected = (service, rule) in SIZE_DECLARED_FIRST
    assert match.rule.preserve_length is expected
    assert match.rule.sanitise_options().preserve_length is expected


@pytest.mark.parametrize("host", UNRELATED_HOSTS)
def test_unrelated_hosts_are_not_protected(default_policy, host):
    assert not default_policy.protects_host(host)
    assert default_policy.match(host, "/v1/chat/completions", "POST") is None


def test_only_the_grpc_api_refuses_bodies_veil_cannot_parse(default_policy):
    refusing = {
        service.name
        for service in default_policy.services
        for route in service.routes
        if route.rule.unparsed_bodies is UnparsedBodies.BLOCK
    }
    assert refusing == {"xai-api"}


def test_everything_else_logs_what_it_cannot_see(default_policy):
    for service in default_policy.services:
        for route in service.routes:
            if service.name != "xai-api":
                assert route.rule.unparsed_bodies is UnparsedBodies.LOG, (service.name, route.name)
            assert route.rule.image_references is ImageReferences.LOG, (service.name, route.name)


# ---- what Veil cannot see: unparsed bodies, image references, WebSockets ---------------------


def test_unseen_settings_default_to_log():
    rule = policy(MINIMAL).match("api.example.com", "/x", "POST").rule
    assert rule.unparsed_bodies is UnparsedBodies.LOG and rule.image_references is ImageReferences.LOG


@pytest.mark.parametrize("value", ["allow", "log", "block", "LOG"])
def test_unseen_settings_take_allow_log_or_block(value):
    text = MINIMAL + f"    unparsed_bodies: {value}\n    image_references: {value}\n"
    rule = policy(text).match("api.example.com", "/x", "POST").rule
    assert rule.unparsed_bodies.value == rule.image_references.value == value.lower()


def test_image_references_rejects_other_words_precisely():
    assert problems(MINIMAL + "    rules:\n      - image_references: warn\n") == [
        "p.yaml, line 6: services.svc.rules[0].image_references: 'warn' is not allowed; use one of allow, log, block"
    ]


def test_a_websocket_upgrade_takes_the_first_rule_whose_paths_match_whatever_its_methods():
    loaded = policy(MINIMAL + """\
    rules:
      - {name: chat, paths: ["/c/api/chat*"], unparsed_bodies: block}
      - {name: app}
""")
    assert loaded.match("api.example.com", "/c/api/chat?x=1", "GET") is None  # default methods
    assert loaded.match_any_method("api.example.com", "/c/api/chat?x=1").rule_name == "chat"
    assert loaded.match_any_method("api.example.com", "/other").rule_name == "app"
    assert loaded.match_any_method("unrelated.example.org", "/c/api/chat") is None


# ---- host matching --------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["API.OpenAI.com", "api.openai.com:443", "api.openai.com.", "Api.Openai.Com.:8443"])
def test_host_case_port_and_trailing_dot_are_ignored(default_policy, host):
    assert default_policy.match(host, "/v1/files", "POST").service == "openai-api"


def test_a_wildcard_matches_sub_domains_at_any_depth_but_not_the_domain_itself():
    wildcard = policy(MINIMAL.replace('"api.example.com"', '"*.example.com"'))
    assert wildcard.protects_host("a.example.com")
    assert wildcard.protects_host("a.b.example.com")
    assert not wildcard.protects_host("example.com")
    assert not wildcard.protects_host("badexample.com")
    assert not wildcard.protects_host("a.example.com.evil.net")


def test_the_most_specific_host_pattern_wins_whatever_the_order():
    rules = policy("""\
        version: 1
        services:
          broad:
            hosts: ["*.example.com"]
          narrower:
            hosts: ["*.eu.example.com"]
          exact:
            hosts: ["api.eu.example.com"]
        """)
    assert rules.match("api.eu.example.com", "/", "POST").service == "exact"
    assert rules.match("x.eu.example.com", "/", "POST").service == "narrower"
    assert rules.match("x.example.com", "/", "POST").service == "broad"


# ---- rules: paths, methods, first match --------------------------------------------------

ROUTED = """\
version: 1
services:
  svc:
    hosts: ["api.example.com"]
    rules:
      - name: files
        paths: ["/v1/files", "/v1/uploads/*"]
        faces: blur
      - paths: ["/v1/*/edits"]
        methods: [put]
      - name: any-method
        paths: ["/admin/*"]
        methods: ["*"]
      - name: rest
        faces: off
"""


@pytest.fixture(scope="module")
def routed():
    return policy(ROUTED)


@pytest.mark.parametrize(
    "path, method, rule_name",
    [
        ("/v1/files", "POST", "files"),
        ("/v1/uploads/u1/parts", "POST", "files"),  # * crosses '/'
        ("/v1/files?purpose=vision", "POST", "files"),  # the query string is not matched
        ("/v1/files/extra", "POST", "rest"),  # patterns match the whole path
        ("/V1/FILES", "POST", "rest"),  # paths are case-sensitive
        ("/v1/images/edits", "PUT", "svc#1"),  # unnamed rules are named <service>#<index>
        ("/v1/images/edits", "POST", "rest"),  # methods narrow a rule
        ("/admin/x", "DELETE", "any-method"),
        ("/elsewhere", "patch", "rest"),
    ],
)
def test_the_first_rule_whose_paths_and_methods_match_wins(routed, path, method, rule_name):
    assert routed.match("api.example.com", path, method).rule_name == rule_name


def test_without_methods_a_rule_matches_only_upload_methods(routed):
    assert routed.match("api.example.com", "/elsewhere", "GET") is None
    assert routed.match("api.example.com", "/elsewhere", "DELETE") is None
    assert routed.protects_host("api.example.com")


def test_a_service_without_rules_has_one_catch_all_rule():
    match = policy(MINIMAL).match("api.example.com", "/anything/at/all", "PUT")
    assert (match.service, match.rule_name) == ("svc", "svc#0")


# ---- inheritance --------------------------------------------------------------------------


def test_settings_flow_from_built_in_to_defaults_to_service_to_rule():
    layered = policy("""\
        version: 1
        defaults:
          faces: blur
          on_error: allow
          limits:
            max_image_pixels: 1_000
        services:
          svc:
            hosts: ["api.example.com"]
            keep_icc: false
            limits:
              max_body_bytes: 2_000
            rules:
              - name: tight
                paths: ["/tight"]
                faces: pixelate
                limits:
                  image_timeout_seconds: 2.5
              - name: rest
        """)
    tight = layered.match("api.example.com", "/tight", "POST").rule
    rest = layered.match("api.example.com", "/other", "POST").rule
    assert tight.faces is FaceMode.PIXELATE and rest.faces is FaceMode.BLUR
    assert tight.on_error is rest.on_error is OnError.ALLOW
    assert tight.keep_icc is rest.keep_icc is False
    assert tight.action is Action.SANITISE and tight.strip is True  # built in
    assert tight.limits == Limits(max_image_pixels=1_000, max_body_bytes=2_000, image_timeout_seconds=2.5)
    assert rest.limits == Limits(max_image_pixels=1_000, max_body_bytes=2_000, image_timeout_seconds=20.0)
    assert layered.defaults.keep_icc is True  # a service's settings stay with that service


def test_strip_false_is_fine_where_nothing_is_cleaned():
    allowed = policy(MINIMAL + "    action: allow\n    strip: false\n")
    assert allowed.match("api.example.com", "/", "POST").rule.strip is False


def test_largest_body_limit_covers_every_rule():
    mixed = policy(MINIMAL + "    limits: {max_body_bytes: 10}\n  big:\n    hosts: [big.example.com]\n    limits: {max_body_bytes: 300}\n")
    assert mixed.largest_body_limit() == 300
    assert load_default_policy().largest_body_limit() == 104_857_600


def test_the_word_off_is_a_face_mode_not_a_boolean():
    # YAML 1.1 reads a bare `off` as false; the policy reads the word as written.
    rule = policy(MINIMAL + "    faces: off\n").match("api.example.com", "/", "POST").rule
    assert rule.faces is FaceMode.OFF


def test_sanitise_options_carry_the_rule_settings():
    rule = policy(MINIMAL + "    faces: pixelate\n    keep_icc: false\n    limits: {max_image_pixels: 123, max_body_bytes: 456}\n").match(
        "api.example.com", "/", "POST"
    ).rule
    options = rule.sanitise_options()
    assert isinstance(options, SanitiseOptions)
    assert (options.faces, options.keep_icc, options.max_pixels, options.max_bytes) == (FaceMode.PIXELATE, False, 123, 456)


def test_a_policy_cannot_be_changed_once_loaded(default_policy):
    match = default_policy.match("api.openai.com", "/v1/files", "POST")
    with pytest.raises(dataclasses.FrozenInstanceError):
        match.rule.faces = FaceMode.OFF
    with pytest.raises(dataclasses.FrozenInstanceError):
        default_policy.services = ()


# ---- error messages: file, line, dotted path, what is wrong, what is allowed --------------


def test_a_misspelt_value_names_file_line_path_and_the_choices():
    assert problems(
        """\
        version: 1
        services:
          openai-api:
            hosts: ["api.openai.com"]
            rules:
              - name: uploads
                faces: maks
        """,
        source="config/policy.yaml",
    ) == [
        "config/policy.yaml, line 7: services.openai-api.rules[0].faces: 'maks' is not allowed; did you mean 'mask'? use one of mask, blur, pixelate, off"
    ]


def test_an_unknown_key_suggests_the_close_one():
    assert problems(MINIMAL + "    fcaes: mask\n") == [
        "p.yaml, line 5: services.svc.fcaes: unknown key; did you mean 'faces'? allowed here: hosts, rules, action, strip, "
        "faces, keep_icc, on_error, preserve_length, unparsed_bodies, image_references, opaque_files, text, documents, unknown_members, document_comments, office_macros, limits, detection, text_detection"
    ]


def test_a_duplicate_key_is_an_error_not_a_silent_overwrite():
    assert problems(MINIMAL + "    faces: mask\n    faces: off\n") == [
        "p.yaml, line 6: services.svc.faces: duplicate key (first at line 5); YAML would silently keep only the last one, so remove one"
    ]


def test_a_duplicate_service_is_an_error():
    lines = problems(MINIMAL + '  svc:\n    hosts: ["other.example.com"]\n')
    assert lines == [
        "p.yaml, line 5: services.svc: duplicate key (first at line 3); YAML would silently keep only the last one, so remove one"
    ]


@pytest.mark.parametrize(
    "addition, expected",
    [
        ("    keep_icc: maybe\n", "line 5: services.svc.keep_icc: expected true or false, got 'maybe'"),
        ("    strip: yes\n", "line 5: services.svc.strip: 'yes' is ambiguous in YAML; write true or false"),
        ("    limits: 5\n", "line 5: services.svc.limits: expected a mapping of keys to values, got '5'"),
        ("    limits:\n      max_image_pixels: -1\n", "line 6: services.svc.limits.max_image_pixels: must be greater than 0, got -1"),
        ("    limits:\n      max_body_bytes: 1.5\n",
         "line 6: services.svc.limits.max_body_bytes: expected a whole number (underscores allowed: 50_000_000), got '1.5'"),
        ('    limits:\n      max_body_bytes: "100"\n',
         "line 6: services.svc.limits.max_body_bytes: expected a number, got the text '100'; remove the quotes"),
        ("    limits:\n      image_timeout_seconds: 0\n", "line 6: services.svc.limits.image_timeout_seconds: must be greater than 0, got 0"),
        ('    limits:\n      image_timeout_seconds: "20s"\n',
         "line 6: services.svc.limits.image_timeout_seconds: expected a number, got '20s'; write the number alone, "
         "without 's' (the key names the unit)"),
        ('    limits:\n      image_timeout_seconds: "twenty"\n',
         "line 6: services.svc.limits.image_timeout_seconds: expected a number, got 'twenty'"),
        ("    limits:\n      image_timeout_seconds: 20 s\n",
         "line 6: services.svc.limits.image_timeout_seconds: expected a number, got '20 s'; write the number alone, "
         "without 's' (the key names the unit)"),
        ("    action: sanitize\n", "line 5: services.svc.action: 'sanitize' is not allowed; did you mean 'sanitise'? "
         "use one of sanitise, block, allow, monitor"),
        ("    action: sanitization\n", "line 5: services.svc.action: 'sanitization' is not allowed; did you mean 'sanitise'? "
         "use one of sanitise, block, allow, monitor"),
        ("    action: Sanitized\n", "line 5: services.svc.action: 'Sanitized' is not allowed; did you mean 'sanitise'? "
         "use one of sanitise, block, allow, monitor"),
        ("    rules: {name: x}\n", 'line 5: services.svc.rules: expected a list, e.g. rules: [{paths: ["/v1/*"]}]; got a mapping'),
        ("    rules:\n      - paths: []\n",
         "line 6: services.svc.rules[0].paths: the list is empty; list at least one, e.g. "
         'paths: ["/v1/files", "/v1/uploads/*"]; or leave paths out to match every path'),
        ("    rules:\n      - paths: [v1/files]\n", "line 6: services.svc.rules[0].paths[0]: 'v1/files': a path starts with '/' (host names go in hosts)"),
        ("    rules:\n      - methods: [POST, PSOT]\n",
         "line 6: services.svc.rules[0].methods[1]: 'PSOT' is not an HTTP method; did you mean 'POST'? "
         "use one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, or '*' for any"),
        ("    action: monitor\n    strip: false\n",
         "line 6: services.svc.strip: strip: false cannot be combined with action: monitor (from services.svc.action, line 5); "
         "cleaning always removes metadata; use action: allow to pass images unchanged"),
    ],
)
def test_each_kind_of_bad_value_is_reported_at_its_line(addition, expected):
    assert problems(MINIMAL + addition) == [f"p.yaml, {expected}"]


@pytest.mark.parametrize(
    "host, message",
    [
        ('"*"', "'*' alone would decrypt every host; list the hosts to protect"),
        ('"*.com"', "'*.com' is too broad: it would match every '.com' host"),
        ('"api.*.com"', "'api.*.com' is too broad: write the last two labels out, as in '*.example.com' or 'api.*.example.com'"),
        ('"api.**.example.com"', "'api.**.example.com': one '*' per label at most"),
        ('"https://api.example.com"', "'https://api.example.com': write the host name only, without 'https://'"),
        ('"api.example.com/v1"', "'api.example.com/v1': write the host name only; paths go in a rule's paths"),
        ('"api.example.com:443"', "'api.example.com:443': ports are ignored when matching; write 'api.example.com'"),
        ('"api..example.com"', "'api..example.com' is not a valid host name (letters, digits and '-' between dots)"),
        ("[a, b]", "expected a text value, got a list"),
    ],
)
def test_bad_host_patterns_are_refused(host, message):
    text = MINIMAL.replace('["api.example.com"]', f'["ok.example.com", {host}]')
    assert problems(text) == [f"p.yaml, line 4: services.svc.hosts[1]: {message}"]


def test_an_empty_host_list_is_refused():
    assert problems(MINIMAL.replace('["api.example.com"]', "[]")) == [
        'p.yaml, line 4: services.svc.hosts: the list is empty; list at least one, e.g. hosts: ["api.example.com", "*.example.net"]'
    ]


def test_a_host_belongs_to_one_service():
    assert problems(MINIMAL + '  copy:\n    hosts:\n      - "other.example.com"\n      - "API.example.com."\n') == [
        "p.yaml, line 8: services.copy.hosts: 'api.example.com' is already listed by service 'svc'; a host belongs to one service"
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        (MINIMAL.replace("version: 1\n", ""), "p.yaml, line 1: version: missing; add 'version: 1' at the top"),
        (MINIMAL.replace("version: 1", "version: 2"), "p.yaml, line 1: version: '2' is not supported; this Veil reads version 1"),
        (MINIMAL.replace("version: 1", 'version: "1"'), "p.yaml, line 1: version: '1' is not supported; this Veil reads version 1"),
        ("", "p.yaml, line 1: the policy is empty; it starts with 'version: 1', then 'services:'"),
        ("version: 1\n", "p.yaml, line 1: services: missing; list the services to protect, each with its hosts, "
         "or include catalogue services: catalogue: {include: [all]}"),
        ("version: 1\nservices: {}\n", "p.yaml, line 2: services: no services; the policy would protect nothing"),
        ("- version: 1\n", "p.yaml, line 1: expected a mapping of keys to values, got a list"),
    ],
)
def test_document_level_problems(text, expected):
    assert problems(text) == [expected]


def test_a_yaml_syntax_error_reports_its_line():
    broken = MINIMAL + '  other:\n    hosts: ["b.example.com"\n    faces: mask\n'
    [line] = problems(broken)
    assert line.startswith("p.yaml, line 7: YAML syntax error: ")
    assert "starts at line 6" in line  # where the unclosed list began


def test_a_rule_hidden_behind_a_catch_all_is_reported():
    lines = problems(MINIMAL + "    rules:\n      - name: everything\n      - name: files\n        paths: [/v1/files]\n")
    assert lines == [
        "p.yaml, line 7: services.svc.rules[1]: this rule can never match: rule 'everything' (line 6) comes first and "
        "matches every request this one would; move this rule above it or remove it"
    ]


def test_a_narrower_rule_after_a_broader_glob_is_reported_but_not_the_reverse():
    text = MINIMAL + "    rules:\n      - paths: ['/v1/*']\n      - paths: ['/v1/files/*']\n"
    assert "services.svc.rules[1]: this rule can never match" in problems(text)[0]
    reverse = MINIMAL + "    rules:\n      - paths: ['/v1/files/*']\n      - paths: ['/v1/*']\n"
    assert len(policy(reverse).services[0].routes) == 2
    other_methods = MINIMAL + "    rules:\n      - paths: ['/v1/*']\n        methods: [POST]\n      - paths: ['/v1/*']\n        methods: [PUT]\n"
    assert len(policy(other_methods).services[0].routes) == 2


def test_every_problem_is_reported_at_once_in_document_order():
    lines = problems("""\
        version: 3
        defaults:
          faces: maks
          limits:
            max_body_bytes: -5
        services:
          openai-api:
            hosts: []
            rules:
              - methods: [FETCH]
                on_error: ignore
          claude:
            hosts: ["claude.ai"]
            unparsed_bodies: drop
        """)
    assert [line.split(":")[0] + ":" + line.split(":")[1] for line in lines] == [
        "p.yaml, line 1: version",
        "p.yaml, line 3: defaults.faces",
        "p.yaml, line 5: defaults.limits.max_body_bytes",
        "p.yaml, line 8: services.openai-api.hosts",
        "p.yaml, line 10: services.openai-api.rules[0].methods[0]",
        "p.yaml, line 11: services.openai-api.rules[0].on_error",
        "p.yaml, line 14: services.claude.unparsed_bodies",
    ]
    assert lines[-1].endswith("'drop' is not allowed; use one of allow, log, block")


def test_load_policy_names_the_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(MINIMAL + "    faces: maks\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(caught.value).startswith(f"{path}, line 5: services.svc.faces: 'maks'")
    assert caught.value.problems[0].line == 5


def test_an_unreadable_file_is_a_policy_error(tmp_path):
    with pytest.raises(PolicyError, match="cannot read the policy"):
        load_policy(tmp_path / "missing.yaml")


# ---- allow_hosts: decrypt protected hosts only ---------------------------------------------


def allowed_by_mitmproxy(patterns: list[str], address: str) -> bool:
    """How mitmproxy's next_layer addon applies `allow_hosts` to a 'host:port' string."""
    return any(re.search(pattern, address, re.IGNORECASE) for pattern in patterns)


@pytest.mark.parametrize("host", sorted(DESIGN_HOSTS))
def test_allow_hosts_lets_every_protected_host_through(default_policy, host):
    patterns = default_policy.allow_hosts_patterns()
    for address in (f"{host}:443", f"{host}:8443", f"{host.upper()}:443", f"{host}.:443"):
        assert allowed_by_mitmproxy(patterns, address), address


@pytest.mark.parametrize("host", UNRELATED_HOSTS + ["api.openai.com.evil.com", "evil.com/api.openai.com"])
def test_allow_hosts_lets_nothing_else_through(default_policy, host):
    patterns = default_policy.allow_hosts_patterns()
    assert not allowed_by_mitmproxy(patterns, f"{host}:443")


def test_allow_hosts_agrees_with_protects_host(default_policy):
    patterns = default_policy.allow_hosts_patterns()
    candidates = [*DESIGN_HOSTS, *UNRELATED_HOSTS, "a.b.oaiusercontent.com", "oaiusercontent.com.evil.com", "1.2.3.4"]
    for host in candidates:
        assert allowed_by_mitmproxy(patterns, f"{host}:443") == default_policy.protects_host(host), host


def test_allow_hosts_patterns_are_readable_and_unique(default_policy):
    patterns = default_policy.allow_hosts_patterns()
    assert len(patterns) == len(set(patterns))
    assert r"^api\.openai\.com\.?(?::\d+)?$" in patterns


# ---- the example policies -------------------------------------------------------------------


EXAMPLES = sorted((CONFIG / "examples").glob("*.yaml"))


def test_there_are_example_policies():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_policies_load(path):
    assert load_policy(path).services


def test_the_monitor_trial_changes_nothing():
    trial = load_policy(CONFIG / "examples" / "monitor-trial.yaml")
    assert all(route.rule.action is Action.MONITOR for service in trial.services for route in service.routes)
