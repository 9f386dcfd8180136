"""Veil's CA files in the confdir, made on demand: the CA itself (as mitmproxy would make
it on first start) and the bundle of the system's roots plus the CA that the printed
SSL_CERT_FILE / REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE name. `advice_lines` is what
`veil run` and `veil trust --env` print; `trust.ca_environment` decides what it says."""

import ssl
from pathlib import Path

from . import trust
from .output import write_atomically

CA_BASENAME = "mitmproxy"  # mitmproxy's file names: mitmproxy-ca.pem, mitmproxy-ca-cert.pem, …
CA_KEY_SIZE = 2048  # mitmproxy's default (its key_size option)
_SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")


def ca_certificate(confdir: Path) -> Path:
    return confdir / f"{CA_BASENAME}-ca-cert.pem"


def ensure_ca(confdir: Path) -> Path:
    """The CA certificate, created now if missing, so the advice printed before the proxy
    starts can name a bundle that already holds it."""
    ca = ca_certificate(confdir)
    if not ca.exists():
        from mitmproxy.certs import CertStore

        confdir.mkdir(mode=0o700, parents=True, exist_ok=True)  # as mitmproxy itself would
        CertStore.from_store(confdir, CA_BASENAME, CA_KEY_SIZE)
    return ca


def system_roots() -> Path | None:
    """The operating system's CA bundle (certifi's as a last resort)."""
    candidates = [ssl.get_default_verify_paths().cafile, *_SYSTEM_BUNDLES]
    try:
        import certifi

        candidates.append(certifi.where())
    except ImportError:
        pass
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def ensure_bundle(ca_pem: Path) -> Path:
    """Writes the bundle beside the CA when it is missing or out of date (a new CA, updated
    system roots); returns its path."""
    roots = system_roots()
    bundle = trust.bundle_path(ca_pem)
    data = trust.concatenated((roots, ca_pem) if roots else (ca_pem,))
    if not bundle.is_file() or bundle.read_bytes() != data:
        write_atomically(bundle, data)
    return bundle


def advice_lines(ca_pem: Path, system: str) -> list[str]:
    """The environment variables to set, with the bundle they name made or refreshed."""
    ensure_bundle(ca_pem)
    return trust.environment_lines(system, ca_pem)
