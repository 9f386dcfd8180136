"""`veil …`: a thin command-line adapter over the core.

Exit codes: 0 done, 2 the input was refused (unsupported, too large, malformed, not
verifiable) or could not be read, with one readable line on stderr.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from ..clean.errors import SanitiseError
from ..clean.options import FaceMode, SanitiseOptions
from .audit import register as register_audit_commands
from .browser import register as register_browser_commands
from .output import write_atomically

EXIT_REFUSED = 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_REFUSED
    return args.handler(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="veil", description="Keep personal data in photos away from AI services.")
    commands = parser.add_subparsers(title="commands")
    scrub = commands.add_parser("scrub", help="strip metadata and mask faces in one image file")
    scrub.add_argument("input", help="image file to clean ('-' for standard input)")
    scrub.add_argument("output", help="where to write the clean image ('-' for standard output)")
    scrub.add_argument(
        "--faces",
        choices=[mode.value for mode in FaceMode],
        default=FaceMode.MASK.value,
        help="mask (opaque, default), blur or pixelate (weaker: can be undone), or off",
    )
    scrub.add_argument("--drop-icc", action="store_true", help="also drop the colour profile")
    scrub.add_argument("--max-megapixels", type=float, default=50.0, help="refuse larger images (default 50)")
    scrub.add_argument("--json", action="store_true", help="print the report as one JSON object on stdout")
    scrub.set_defaults(handler=_scrub)

    run = commands.add_parser("run", help="start the proxy (mitmdump with the Veil addon)")
    run.add_argument("--policy", default=None, help="policy file (default: config/policy.yaml)")
    run.add_argument("--audit-log", default=None, help="audit log path (default: ~/.local/state/veil/audit.jsonl)")
    run.add_argument("--listen-host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    run.add_argument("--listen-port", type=int, default=8080, help="port to listen on (default 8080)")
    run.add_argument("--confdir", default="~/.mitmproxy", help="where the CA certificate and key live")
    run.add_argument(
        "--allow-open-proxy",
        action="store_true",
        help="listen beyond loopback without proxy authentication (refused otherwise: an open proxy "
        "decrypts traffic for anyone who can reach it)",
    )
    run.add_argument("mitmproxy_args", nargs=argparse.REMAINDER, help="after --: extra mitmdump arguments")
    run.set_defaults(handler=_run)

    policy = commands.add_parser("policy", help="work with policy files")
    policy_commands = policy.add_subparsers(title="policy commands")
    check = policy_commands.add_parser("check", help="validate a policy file and summarise it")
    check.add_argument("file")
    check.set_defaults(handler=_policy_check)
    register_audit_commands(commands)
    register_browser_commands(commands)
    return parser


def _scrub(args: argparse.Namespace) -> int:
    from ..clean.core import sanitise  # imported here so `veil --help` stays instant

    options = SanitiseOptions(
        faces=FaceMode(args.faces), keep_icc=not args.drop_icc, max_pixels=int(args.max_megapixels * 1e6)
    )
    try:
        data = sys.stdin.buffer.read() if args.input == "-" else Path(args.input).read_bytes()
    except OSError as error:
        return _refuse(f"cannot read {args.input}: {error.strerror}")
    try:
        result = sanitise(data, options)
    except SanitiseError as error:
        return _refuse(f"{args.input}: {error.reason}")
    if args.output == "-":
        sys.stdout.buffer.write(result.data)
        sys.stdout.buffer.flush()
    else:
        try:
            write_atomically(Path(args.output), result.data)
        except OSError as error:
            return _refuse(f"cannot write {args.output}: {error.strerror}")
    if args.json:
        print(json.dumps(result.report.to_dict()), file=sys.stderr if args.output == "-" else sys.stdout)
    return 0


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


def _run(args: argparse.Namespace) -> int:
    """Validates the policy first (a readable message beats a mitmproxy traceback), then
    becomes mitmdump with the Veil addon."""
    from ..policy import DEFAULT_POLICY_PATH, PolicyError, load_policy
    from ..audit.writer import refuse_if_in_use
    from ..proxy.addon import default_audit_log

    policy_path = Path(args.policy or DEFAULT_POLICY_PATH)
    try:
        load_policy(policy_path)
    except PolicyError as error:
        print(f"veil: not starting on this policy:\n{error}", file=sys.stderr)
        return EXIT_REFUSED
    confdir = Path(args.confdir).expanduser()
    audit_log = Path(args.audit_log or default_audit_log())
    try:
        refuse_if_in_use(audit_log)
    except OSError as error:
        print(f"veil: not starting: cannot write the audit log {audit_log}: {error.strerror}", file=sys.stderr)
        return EXIT_REFUSED
    extra = args.mitmproxy_args[1:] if args.mitmproxy_args[:1] == ["--"] else args.mitmproxy_args
    refusal = _open_proxy_refusal(args.listen_host, args.allow_open_proxy, extra)
    if refusal:
        # Checked here too, so no socket is ever opened: mitmdump binds its listener while it
        # loads the addon, and exits on the addon's refusal only a moment later.
        print(f"veil: {refusal}", file=sys.stderr)
        return EXIT_REFUSED
    command = [
        str(Path(sys.executable).with_name("mitmdump")),
        "--listen-host", args.listen_host, "--listen-port", str(args.listen_port),
        "--set", f"confdir={confdir}",
        "-s", str(Path(__file__).resolve().parents[2] / "veil_addon.py"),
        "--set", f"veil_policy={policy_path.resolve()}",
        "--set", f"veil_audit_log={audit_log}",
        *(["--set", "veil_allow_open_proxy=true"] if args.allow_open_proxy else []),
        *extra,
    ]  # fmt: skip
    _print_start_banner(args, policy_path, audit_log, confdir)
    os.execv(command[0], command)


def _open_proxy_refusal(listen_host: str, allowed: bool, extra: list[str]) -> str | None:
    """The addon's refusal for a non-loopback --listen-host, when no extra argument sets up
    proxy authentication (the addon still checks modes and options given after --)."""
    from mitmproxy import exceptions

    from ..proxy.exposure import refuse_open_proxy

    if any("proxyauth" in argument or "veil_allow_open_proxy" in argument for argument in extra):
        return None
    try:
        refuse_open_proxy(["regular"], listen_host, None, allowed)
    except exceptions.OptionsError as error:
        return str(error)
    return None


def _print_start_banner(args, policy_path: Path, audit_log: Path, confdir: Path) -> None:
    ca = confdir / "mitmproxy-ca-cert.pem"
    print(
        f"Veil: proxy on http://{args.listen_host}:{args.listen_port}  policy: {policy_path}  audit log: {audit_log}\n"
        f"  CA certificate: {ca}{'' if ca.exists() else ' (created on first start)'}\n"
        f"  Trust it (`veil trust` shows how), then point clients at the proxy, e.g.:\n"
        f"    export HTTPS_PROXY=http://{args.listen_host}:{args.listen_port} SSL_CERT_FILE={ca} REQUESTS_CA_BUNDLE={ca} NODE_EXTRA_CA_CERTS={ca}\n"
        f"  or set the system's proxy auto-config URL to http://{args.listen_host}:{args.listen_port}/proxy.pac\n"
        f"  README.md explains system-wide trust and proxy settings.",
        file=sys.stderr,
        flush=True,
    )


def _refuse(message: str) -> int:
    print(f"veil: {message}", file=sys.stderr)
    return EXIT_REFUSED



if __name__ == "__main__":
    sys.exit(main())
