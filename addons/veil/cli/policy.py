"""`veil policy check`: validate a policy file and summarise it.

Exit codes: 0 valid, 1 the policy has problems (each listed with its line).
"""

import argparse
import sys


def register(commands) -> None:
    from ..policy import DEFAULT_POLICY_PATH

    policy = commands.add_parser("policy", help="work with policy files")
    policy_commands = policy.add_subparsers(title="policy commands")
    check = policy_commands.add_parser("check", help="validate a policy file and summarise it")
    check.add_argument("file", nargs="?", default=str(DEFAULT_POLICY_PATH),
                       help=f"the policy to check (default: the one Veil ships, {DEFAULT_POLICY_PATH})")  # fmt: skip
    check.set_defaults(handler=_policy_check)


def _policy_check(args: argparse.Namespace) -> int:
    from ..policy import PolicyError, load_policy

    try:
        policy = load_policy(args.file)
    except PolicyError as error:
        print(error, file=sys.stderr)
        return 1
    rules = sum(len(service.routes) for service in policy.services)
    print(f"{args.file}: valid: {len(policy.services)} services, {rules} rules")
    for service in policy.services:
        hosts = ", ".join(pattern.text for pattern in service.hosts)
        actions = ", ".join(sorted({route.rule.action.value for route in service.routes}))
        print(f"  {service.name}: {hosts} ({actions})")
    return 0
