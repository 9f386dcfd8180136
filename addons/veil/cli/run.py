"""`veil run`: checks what would otherwise fail later (the policy, an open proxy, the audit
log's writer lock, the face model), then becomes mitmdump with the Veil addon.

Exit codes: 2 not started (the reason on stderr); otherwise mitmdump's own.
"""

import argparse
import os
import sys
from pathlib import Path

from . import ca_files, trust
from .installation import face_model_problem, version

EXIT_REFUSED = 2
# The addon script inside the package, so an installed Veil needs no checkout.
MITMDUMP_ENTRY = Path(__file__).resolve().parents[1] / "proxy" / "mitmdump_entry.py"


def register(commands) -> None:
    run = commands.add_parser("run", help="start the proxy (mitmdump with the Veil addon)")
    run.add_argument("--policy", default=None, help="policy file (default: the policy Veil ships, config/policy.yaml)")
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
    run.add_argument(
        "--web",
        action="store_true",
        help="start mitmweb instead of mitmdump: every flow in a browser tab, with Veil's comment and marker",
    )
    run.add_argument("--notify", action="store_true", help="a desktop notification for every blocked upload (host and reason only)")
    run.add_argument("mitmproxy_args", nargs=argparse.REMAINDER, help="after --: extra mitmdump arguments")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    """Validates first (a readable message beats a mitmproxy traceback), then becomes
    mitmdump with the Veil addon."""
    from ..audit.writer import refuse_if_in_use
    from ..policy import DEFAULT_POLICY_PATH, PolicyError, load_policy
    from ..proxy.addon import default_audit_log

    policy_path = Path(args.policy or DEFAULT_POLICY_PATH)
    try:
        load_policy(policy_path)
    except PolicyError as error:
        return _refuse(f"not starting on this policy:\n{error}")
    confdir = Path(args.confdir).expanduser()
    audit_log = Path(args.audit_log or default_audit_log())
    extra = args.mitmproxy_args[1:] if args.mitmproxy_args[:1] == ["--"] else args.mitmproxy_args
    refusal = open_proxy_refusal(args.listen_host, args.allow_open_proxy, extra)
    if refusal:
        # Checked here too, so no socket is ever opened: mitmdump binds its listener while it
        # loads the addon, and exits on the addon's refusal only a moment later.
        return _refuse(refusal)
    try:
        refuse_if_in_use(audit_log)
    except OSError as error:
        return _refuse(f"not starting: cannot write the audit log {audit_log}: {error.strerror}")
    problem = face_model_problem()
    if problem:
        return _refuse(f"not starting: {problem}")
    try:
        ca = ca_files.ensure_ca(confdir)
        advice = ca_files.advice_lines(ca, trust.current_system())
    except OSError as error:
        # A deployment may mount only mitmproxy-ca.pem, read-only: mitmproxy needs no more,
        # and the advice is for people at a desk, so the proxy starts without it.
        ca, advice = ca_files.ca_certificate(confdir), []
        print(f"veil: no CA advice: cannot prepare the CA files in {confdir}: {error.strerror}", file=sys.stderr)
    command = [
        str(Path(sys.executable).with_name("mitmweb" if args.web else "mitmdump")),
        "--listen-host", args.listen_host, "--listen-port", str(args.listen_port),
        "--set", f"confdir={confdir}",
        "-s", str(MITMDUMP_ENTRY),
        "--set", f"veil_policy={policy_path.resolve()}",
        "--set", f"veil_audit_log={audit_log}",
        *(["--set", "veil_allow_open_proxy=true"] if args.allow_open_proxy else []),
        *(["--set", "veil_notify=true"] if args.notify else []),
        *(["--set", "web_open_browser=false"] if args.web and not _has_display() else []),
        *extra,
    ]  # fmt: skip
    _print_start_banner(args, policy_path, audit_log, ca, advice)
    os.execv(command[0], command)


def _has_display() -> bool:
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_proxy_refusal(listen_host: str, allowed: bool, extra: list[str]) -> str | None:
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


def _print_start_banner(args, policy_path: Path, audit_log: Path, ca: Path, advice: list[str]) -> None:
    proxy = f"http://{args.listen_host}:{args.listen_port}"
    variables = "\n".join(f"    {line}" for line in advice)
    print(
        f"Veil {version()}: proxy on {proxy}  policy: {policy_path}  audit log: {audit_log}\n"
        f"  CA certificate: {ca}\n"
        f"  Trust it (`veil trust` shows how), then point clients at the proxy, e.g.:\n"
        f"    export HTTPS_PROXY={proxy}\n{variables}\n"
        f"  or set the system's proxy auto-config URL to {proxy}/proxy.pac\n"
        f"  docs/trust-ca.md and docs/proxy-setup.md explain system-wide trust and proxy settings.",
        file=sys.stderr,
        flush=True,
    )


def _refuse(message: str) -> int:
    print(f"veil: {message}", file=sys.stderr)
    return EXIT_REFUSED
