"""`veil policy check`: validate a policy file and summarise it; `--hosts` lists every
service it protects with its hosts and what is known about its upload flow.

Exit codes: 0 valid, 1 the policy has problems (each listed with its file and line).
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
    check.add_argument("--hosts", action="store_true", help="list every protected service with its hosts")
    check.set_defaults(handler=_policy_check)


def _policy_check(args: argparse.Namespace) -> int:
    from ..policy import PolicyError, load_catalogue, load_policy

    try:
        policy = load_policy(args.file)
        catalogue = load_catalogue()
    except PolicyError as error:
        print(error, file=sys.stderr)
        return 1
    rules = sum(len(service.routes) for service in policy.services)
    print(f"{args.file}: valid: {len(policy.services)} services, {len(policy.hosts())} hosts, {rules} rules")
    if policy.protects_all_uploads:
        tunnelled = ", ".join(pattern.text for pattern in policy.tunnel) or "none"
        print(f"  protect: all-uploads: every other host is decrypted and its image uploads cleaned; tunnelled: {tunnelled}")
    print(f"  unnamed destinations (bare IP, no server name): {policy.unnamed_destinations.value}")
    if args.hosts:
        for service in sorted(policy.services, key=lambda service: service.name):
            print(_service_line(service, catalogue.entries.get(service.name) if service.from_catalogue else None))
    return 0


def _service_line(service, entry) -> str:
    hosts = ", ".join(pattern.text for pattern in service.hosts)
    actions = ", ".join(sorted({route.rule.action.value for route in service.routes}))
    origin = f"catalogue, flows {entry.flows}" if entry else "policy"
    return f"  {service.name}: {hosts} ({actions}; {origin})"
