"""Rules for some users only: top-level `groups:`, per-rule `users:` / `groups:`, validation."""

from textwrap import dedent

import pytest
from veil.clean.options import FaceMode
from veil.policy import Action, PolicyError, load_default_policy, load_policy_text

IDENTITY = """\
version: 1
groups:
  research: [alice, bob]
  interns: [ivan]
services:
  openai-api:
    hosts: [api.openai.com]
    rules:
      - name: research-exempt
        groups: [research]
        action: allow
      - name: strict
        users: [carol]
        groups: [interns]
        faces: pixelate
        preserve_length: true
      - name: everyone
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(dedent(text), "p.yaml")
    return str(caught.value).splitlines()


@pytest.fixture(scope="module")
def identity_policy():
    return load_policy_text(IDENTITY, "identity.yaml")


@pytest.mark.parametrize(
    "user, rule",
    [("alice", "research-exempt"), ("bob", "research-exempt"), ("carol", "strict"), ("ivan", "strict"),
     ("dave", "everyone"), (None, "everyone"), ("Alice", "everyone")],
)  # fmt: skip
def test_the_first_rule_for_the_user_wins(identity_policy, user, rule):
    match = identity_policy.match("api.openai.com", "/v1/files", "POST", user)
    assert match.rule_name == rule


def test_each_audience_gets_its_own_settings(identity_policy):
    def rule(user):
        return identity_policy.match("api.openai.com", "/v1/files", "POST", user).rule

    assert rule("alice").action == Action.ALLOW
    assert rule("ivan").faces == FaceMode.PIXELATE and rule("ivan").preserve_length
    assert rule("dave").action == Action.SANITISE and rule("dave").faces == FaceMode.MASK


def test_groups_are_kept_and_named(identity_policy):
    assert identity_policy.groups == {"research": frozenset({"alice", "bob"}), "interns": frozenset({"ivan"})}
    assert identity_policy.names_users()
    assert not load_default_policy().names_users()


def test_a_websocket_upgrade_is_matched_for_its_user_too(identity_policy):
    assert identity_policy.match_any_method("api.openai.com", "/v1/realtime", "bob").rule_name == "research-exempt"
    assert identity_policy.match_any_method("api.openai.com", "/v1/realtime", None).rule_name == "everyone"


def test_without_a_rule_for_everyone_other_users_are_not_covered():
    only_alice = load_policy_text(
        "version: 1\nservices:\n  s:\n    hosts: [a.example.com]\n    rules:\n      - users: [alice]\n"
    )
    assert only_alice.match("a.example.com", "/", "POST", "alice") is not None
    assert only_alice.match("a.example.com", "/", "POST", "bob") is None
    assert only_alice.match("a.example.com", "/", "POST") is None


def test_an_unknown_group_is_named_with_a_suggestion():
    found = problems(
        """
        version: 1
        groups: {research: [alice]}
        services:
          s:
            hosts: [a.example.com]
            rules:
              - groups: [reserch]
        """
    )
    assert found == [
        "p.yaml, line 8: services.s.rules[0].groups[0]: unknown group 'reserch'; "
        "did you mean 'research'? groups defined: research"
    ]


def test_a_group_named_without_any_groups_defined():
    found = problems(
        """
        version: 1
        services:
          s:
            hosts: [a.example.com]
            rules:
              - groups: [staff]
        """
    )
    assert found == [
        "p.yaml, line 7: services.s.rules[0].groups[0]: unknown group 'staff'; "
        "no groups are defined; add them under a top-level 'groups:'"
    ]


def test_empty_lists_duplicates_and_bad_names_are_all_reported():
    found = problems(
        """
        version: 1
        groups:
          research: [alice, alice, "bad:name"]
          empty: []
          "no spaces": [x]
        services:
          s:
            hosts: [a.example.com]
            rules:
              - name: nobody
                users: []
              - name: odd
                users: " alice"
        """
    )
    assert found == [
        "p.yaml, line 4: groups.research[1]: 'alice' is listed twice (first at line 4)",
        "p.yaml, line 4: groups.research[2]: 'bad:name' is not a user name: write it as the user logs in to "
        "the proxy (not empty, no ':', no spaces around it)",
        "p.yaml, line 5: groups.empty: the list is empty; list at least one, e.g. research: [alice, bob]",
        "p.yaml, line 6: groups.no spaces: a group name uses letters, digits, '-' and '_'",
        "p.yaml, line 12: services.s.rules[0].users: the list is empty; list at least one, e.g. users: [alice, bob]",
        "p.yaml, line 14: services.s.rules[1].users: expected a list, e.g. users: [alice, bob]; got ' alice'",
    ]


def test_groups_must_be_a_non_empty_mapping():
    assert problems("version: 1\ngroups: {}\nservices:\n  s:\n    hosts: [a.example.com]\n") == [
        "p.yaml, line 2: groups: no groups; define at least one, e.g. groups: {research: [alice, bob]}, or remove 'groups:'"
    ]
    assert problems("version: 1\ngroups: [a]\nservices:\n  s:\n    hosts: [a.example.com]\n") == [
        "p.yaml, line 2: groups: expected a mapping of keys to values, got a list"
    ]


def test_a_rule_for_everyone_shadows_a_later_rule_for_some_users():
    found = problems(
        """
        version: 1
        services:
          s:
            hosts: [a.example.com]
            rules:
              - name: all
              - name: alice
                users: [alice]
        """
    )
    assert found == [
        "p.yaml, line 8: services.s.rules[1]: this rule can never match: rule 'all' (line 7) comes first and "
        "matches every request this one would; move this rule above it or remove it"
    ]


def test_a_rule_for_some_users_shadows_only_rules_for_fewer_of_them():
    found = problems(
        """
        version: 1
        services:
          s:
            hosts: [a.example.com]
            rules:
              - {name: ab, users: [alice, bob]}
              - {name: b, users: [bob]}
        """
    )
    assert "rule 'ab' (line 7) comes first" in found[0]
    load_policy_text(
        "version: 1\nservices:\n  s:\n    hosts: [a.example.com]\n    rules:\n"
        "      - {name: a, users: [alice]}\n      - {name: b, users: [bob]}\n      - {name: all}\n"
    )
