"""The service catalogue (config/services/) and how a policy uses it: including services by
name or group, excepting some, adjusting them; the catch-all `protect: all-uploads` with its
`tunnel:` exceptions; `unnamed_destinations`; label globs in host patterns."""

import re
import textwrap
from pathlib import Path

import pytest
from veil.policy import (
    CATALOGUE_FOLDER,
    CATCH_ALL_SERVICE,
    Action,
    PolicyError,
    Protect,
    UnnamedDestinations,
    load_catalogue,
    load_default_policy,
    load_policy_text,
)
from veil.policy.matching import HostPattern

ROOT = Path(__file__).resolve().parents[2]


def policy(text: str, catalogue=CATALOGUE_FOLDER):
    return load_policy_text(textwrap.dedent(text), "p.yaml", catalogue)


def problems(text: str, catalogue=CATALOGUE_FOLDER) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        policy(text, catalogue)
    return [str(problem) for problem in caught.value.problems]


# ---- the shipped catalogue ------------------------------------------------------------------


def test_the_catalogue_is_found_beside_the_default_policy():
    assert CATALOGUE_FOLDER == ROOT / "config" / "services"


def test_every_catalogue_entry_loads_as_a_service():
    catalogue = load_catalogue()
    every = policy("version: 1\ncatalogue: {include: [all, upload-storage]}\n")
    assert sorted(service.name for service in every.services) == sorted(catalogue.entries)
    assert all(service.hosts and service.from_catalogue for service in every.services)


def test_every_entry_says_where_its_knowledge_comes_from():
    for entry in load_catalogue().entries.values():
        assert entry.source and entry.title and entry.envelopes, entry.name
        if entry.flows == "generic":
            assert "not captured" in entry.source or "generic" in entry.source, entry.name
        if entry.flows == "captured":
            assert "Captured" in entry.source, entry.name


def test_the_default_policy_protects_at_least_sixty_services():
    default = load_default_policy()
    assert len(default.services) >= 60
    assert {service.name for service in default.services} == set(load_catalogue().groups["all"])


# The hosts the coverage issue named as tunnelled untouched, each now protected.
NAMED_IN_THE_ISSUE = [
    "eu.api.openai.com", "us.api.openai.com", "contoso.openai.azure.com", "contoso.cognitiveservices.azure.com",
    "contoso.services.ai.azure.com", "bedrock-runtime.eu-central-1.amazonaws.com", "us-central1-aiplatform.googleapis.com",
    "aiplatform.googleapis.com", "aistudio.google.com", "notebooklm.google.com", "openrouter.ai", "api.groq.com",
    "api.together.xyz", "api.fireworks.ai", "api.cohere.com", "router.huggingface.co", "api-inference.huggingface.co",
    "dashscope-intl.aliyuncs.com", "chat.qwen.ai", "api.moonshot.ai", "www.kimi.com", "poe.com", "www.meta.ai",
    "character.ai", "neo.character.ai", "m365.cloud.microsoft", "api.individual.githubcopilot.com",
    "codestral.mistral.ai", "chat.mistral.ai", "you.com", "www.phind.com", "pi.ai", "huggingface.co",
]  # fmt: skip


@pytest.fixture(scope="module")
def default():
    return load_default_policy()


@pytest.mark.parametrize("host", NAMED_IN_THE_ISSUE)
def test_each_host_named_in_the_issue_is_protected_by_default(default, host):
    assert default.protects_host(host)
    assert any(re.search(pattern, f"{host}:443", re.IGNORECASE) for pattern in default.allow_hosts_patterns())


def test_huggingface_is_protected_for_the_chat_only():
    default = load_default_policy()
    assert default.match("huggingface.co", "/chat/conversation/1", "POST").service == "huggingchat"
    assert default.match("huggingface.co", "/api/repos/create", "POST") is None


def test_shared_storage_is_opt_in():
    assert not load_default_policy().protects_host("account.blob.core.windows.net")
    assert policy("version: 1\ncatalogue: {include: [upload-storage]}\n").protects_host("account.blob.core.windows.net")


# ---- including, excepting -------------------------------------------------------------------


def test_groups_and_exceptions():
    chosen = policy("version: 1\ncatalogue:\n  include: [openai, anthropic-api]\n  except: [sora-web]\n")
    assert sorted(service.name for service in chosen.services) == [
        "anthropic-api", "chatgpt-web", "openai-api", "openai-api-regional"]  # fmt: skip


def test_an_unknown_name_gets_a_suggestion():
    groups = ", ".join(load_catalogue().groups)
    assert problems("version: 1\ncatalogue:\n  include: [all-api, chatgpt-wbe]\n") == [
        f"p.yaml, line 3: catalogue.include[0]: unknown catalogue service or group 'all-api'; did you mean 'all-apis'? groups: {groups}",
        f"p.yaml, line 3: catalogue.include[1]: unknown catalogue service or group 'chatgpt-wbe'; did you mean 'chatgpt-web'? groups: {groups}",
    ]


def test_excepting_what_is_not_included_is_reported():
    assert problems("version: 1\ncatalogue:\n  include: [openai]\n  except: [claude-web]\n") == [
        "p.yaml, line 4: catalogue.except: 'claude-web' is not included, so excepting it changes nothing"
    ]


def test_a_misspelt_adjustment_gets_a_suggestion():
    found = problems("version: 1\ncatalogue: {include: [all]}\nservices:\n  chatgpt-wbe:\n    faces: off\n")
    assert found == [
        "p.yaml, line 5: services.chatgpt-wbe.hosts: missing; list the host names this service uses, e.g. "
        'hosts: ["api.example.com"], or name a catalogue service to adjust it (did you mean \'chatgpt-web\'?)'
    ]


# ---- adjusting a catalogue service ------------------------------------------------------------


def test_the_policy_beats_the_catalogue():
    adjusted = policy("""\
        version: 1
        services:
          chatgpt-web:
            preserve_length: false
            rule_settings:
              blob-upload: {action: block}
        """)
    [service] = adjusted.services
    blob = adjusted.match("files.oaiusercontent.com", "/files/abc/raw", "PUT")
    app = adjusted.match("chatgpt.com", "/backend-api/conversation", "POST")
    assert service.from_catalogue and blob.rule.action is Action.BLOCK and app.rule.action is Action.SANITISE
    assert not app.rule.preserve_length and not blob.rule.preserve_length


def test_own_rules_come_before_the_catalogues_and_may_name_groups():
    adjusted = policy("""\
        version: 1
        groups: {research: [alice]}
        services:
          claude-web:
            rules:
              - name: research-uploads
                paths: ["/api/*/upload"]
                groups: [research]
            rule_settings:
              upload: {action: block}
        """)
    assert adjusted.match("claude.ai", "/api/org/upload", "POST", "alice").rule_name == "research-uploads"
    refused = adjusted.match("claude.ai", "/api/org/upload", "POST", "bob")
    assert refused.rule_name == "upload" and refused.rule.action is Action.BLOCK


def test_an_unknown_rule_in_rule_settings_is_named():
    assert problems("version: 1\nservices:\n  claude-web:\n    rule_settings:\n      uplaod: {action: block}\n") == [
        "p.yaml, line 5: services.claude-web.rule_settings.uplaod: the catalogue service has no rule 'uplaod'; "
        "did you mean 'upload'? its rules: upload, app"
    ]


def test_a_service_with_hosts_replaces_the_catalogue_entry():
    replaced = policy('version: 1\ncatalogue: {include: [openai]}\nservices:\n  chatgpt-web:\n    hosts: ["chatgpt.com"]\n')
    chatgpt = next(service for service in replaced.services if service.name == "chatgpt-web")
    assert not chatgpt.from_catalogue and [pattern.text for pattern in chatgpt.hosts] == ["chatgpt.com"]


# ---- problems in a catalogue file point into that file -----------------------------------------


def write_catalogue(folder: Path, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "acme.yaml").write_text(textwrap.dedent(text))
    return folder


ACME = """\
    provider: Acme
    services:
      acme-api:
        title: Acme API
        kind: api
        hosts: ["api.acme.example"]
        flows: generic
        envelopes: [multipart]
        declares_size: unknown
        source: "Documented host; generic (not captured)"
    """


def test_catalogue_problems_name_the_file_and_line(tmp_path):
    folder = write_catalogue(tmp_path / "services", ACME.replace("kind: api", "kind: apy").replace("[multipart]", "[mulitpart]"))
    file = folder / "acme.yaml"
    assert problems("version: 1\ncatalogue: {include: [acme-api]}\n", folder)[0] == (
        f"{file}, line 5: services.acme-api.kind: 'apy' is not allowed; did you mean 'api'? use one of api, web-app, storage")
    assert problems("version: 1\ncatalogue: {include: [all]}\n", folder)[1] == (
        f"{file}, line 8: services.acme-api.envelopes[0]: 'mulitpart' is not allowed; did you mean 'multipart'? "
        "use one of " + ", ".join(__import__("veil.policy.catalogue", fromlist=["ENVELOPES"]).ENVELOPES))


def test_a_rule_problem_in_the_catalogue_points_at_the_catalogue(tmp_path):
    folder = write_catalogue(tmp_path / "services", ACME.rstrip(" ") + "        rules:\n          - paths: [upload]\n")
    assert problems("version: 1\ncatalogue: {include: [acme-api]}\n", folder) == [
        f"{folder / 'acme.yaml'}, line 12: services.acme-api.rules[0].paths[0]: 'upload': a path starts with '/' (host names go in hosts)"
    ]


# ---- protect: all-uploads, tunnel, unnamed destinations ---------------------------------------------


CATCH_ALL = """\
    version: 1
    protect: all-uploads
    tunnel: ["*.mybank.example", "pinned.example.com"]
    unnamed_destinations: block
    catalogue: {include: [openai]}
    """


def test_all_uploads_gives_unnamed_hosts_the_catch_all_rule():
    gateway = policy(CATCH_ALL)
    assert gateway.protect is Protect.ALL_UPLOADS and gateway.unnamed_destinations is UnnamedDestinations.BLOCK
    assert gateway.match("photos.example.org", "/upload", "POST").service == CATCH_ALL_SERVICE
    assert gateway.match("photos.example.org", "/page", "GET") is None
    assert gateway.match("chatgpt.com", "/backend-api/files", "POST").service == "chatgpt-web"


def test_tunnelled_hosts_are_never_decrypted():
    gateway = policy(CATCH_ALL)
    assert not gateway.protects_host("www.mybank.example") and not gateway.protects_host("pinned.example.com")
    assert gateway.allow_hosts_patterns() == []
    ignored = gateway.ignore_hosts_patterns()
    assert any(re.search(pattern, "login.mybank.example:443") for pattern in ignored)
    assert not any(re.search(pattern, "chatgpt.com:443") for pattern in ignored)


def test_a_tunnel_that_hides_a_service_is_reported():
    assert problems('version: 1\ncatalogue: {include: [openai]}\ntunnel: ["chatgpt.com"]\n') == [
        "p.yaml, line 3: tunnel: 'chatgpt.com' would leave chatgpt.com of service 'chatgpt-web' unprotected; "
        "except the service instead (catalogue.except), or narrow the pattern"
    ]


def test_all_uploads_needs_no_services():
    assert policy("version: 1\nprotect: all-uploads\n").catch_all is not None


# ---- label globs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, host, matches",
    [
        ("bedrock-runtime.*.amazonaws.com", "bedrock-runtime.ap-south-1.amazonaws.com", True),
        ("bedrock-runtime.*.amazonaws.com", "bedrock-runtime.a.b.amazonaws.com", False),
        ("bedrock-runtime.*.amazonaws.com", "bedrock-runtime.amazonaws.com", False),
        ("*-aiplatform.googleapis.com", "europe-west4-aiplatform.googleapis.com", True),
        ("*-aiplatform.googleapis.com", "aiplatform.googleapis.com", False),
        ("*-aiplatform.googleapis.com", "evil.x-aiplatform.googleapis.com", False),
    ],
)
def test_a_label_glob_stays_within_one_label(pattern, host, matches):
    assert HostPattern(pattern).matches(host) is matches
    assert bool(re.search(HostPattern(pattern).allow_hosts_regex(), f"{host}:443")) is matches


def test_an_exact_name_beats_a_label_glob_which_beats_a_wildcard():
    assert HostPattern("a.b.example.com").specificity > HostPattern("a.*.example.com").specificity
    assert HostPattern("a.*.example.com").specificity > HostPattern("*.b.example.com").specificity


def test_an_own_rule_may_not_take_a_catalogue_rules_name():
    found = problems("version: 1\nservices:\n  claude-web:\n    rules:\n      - name: upload\n        action: block\n")
    assert len(found) == 1 and found[0].startswith("p.yaml, line 4: services.claude-web.rules: 'upload' is already the name of a rule")


def test_a_host_of_your_own_may_not_repeat_a_catalogue_host():
    found = problems('version: 1\ncatalogue: {include: [anthropic]}\nservices:\n  mine:\n    hosts: ["claude.ai"]\n')
    assert len(found) == 1 and "'claude.ai' is already listed by service" in found[0]
