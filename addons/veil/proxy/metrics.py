"""Opt-in Prometheus metrics and health checks (`--set veil_metrics_port=9464`), in the
text exposition format written here (a few counters do not need a client library).

Counters per service: uploads seen, sanitised, blocked, faces masked; a histogram of
the time to sanitise one image. Fed from the same records the audit log gets, so the
two always agree. Beside them: errors by kind (audit log writes, worker time-outs and
crashes, overload refusals, upstream failures) and gauges of the work in progress.
The same server answers /healthz and /readyz for load balancers and Kubernetes.
Served on 127.0.0.1 by default: the labels name services.
"""

import threading
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)  # seconds
_COUNTERS = {
    "veil_uploads_seen_total": "Images seen in protected uploads (one per audit record).",
    "veil_uploads_sanitised_total": "Images sanitised and forwarded.",
    "veil_uploads_blocked_total": "Uploads blocked (by policy or because an image could not be cleaned).",
    "veil_faces_masked_total": "Faces masked in forwarded images.",
}
ERROR_KINDS = {
    "audit_write": "the audit log could not be written; uploads were refused",
    "worker_timeout": "an image overran its time limit; its worker was killed",
    "worker_crash": "a cleaning worker died",
    "overloaded": "an upload was refused because too many images were queued",
    "draining": "an upload was refused because Veil was shutting down",
    "upstream": "the service failed or reset after Veil forwarded a cleaned upload",
}


@dataclass(frozen=True)
class Status:
    """What /readyz reports: ready, or the reason it is not."""

    ready: bool
    reason: str = "ready"
    gauges: dict[str, float] | None = None  # name -> value, exported with the counters
    alive: bool = True  # False when the proxy's event loop has stalled: /healthz fails


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self._counters: dict[str, dict[str, float]] = {name: defaultdict(float) for name in _COUNTERS}
        self._latency: dict[str, list[int]] = defaultdict(lambda: [0] * (len(LATENCY_BUCKETS) + 1))
        self._latency_sum: dict[str, float] = defaultdict(float)
        self._errors: dict[str, int] = dict.fromkeys(ERROR_KINDS, 0)
        self.status: Callable[[], Status] = lambda: Status(True)

    def count_error(self, kind: str) -> None:
        assert kind in ERROR_KINDS, kind
        with self._lock:
            self._errors[kind] += 1

    def observe(self, record: dict) -> None:
        """One audit record."""
        event, service = record.get("event"), record.get("service") or "unknown"
        if event not in ("sanitised", "monitored", "blocked", "passed"):
            return
        with self._lock:
            self._counters["veil_uploads_seen_total"][service] += 1
            if event == "sanitised":
                self._counters["veil_uploads_sanitised_total"][service] += 1
                self._counters["veil_faces_masked_total"][service] += record.get("faces") or 0
                if record.get("duration_ms") is not None:
                    self._observe_latency(service, record["duration_ms"] / 1000)
            elif event == "blocked":
                self._counters["veil_uploads_blocked_total"][service] += 1

    def _observe_latency(self, service: str, seconds: float):
        self._latency[service][bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._latency_sum[service] += seconds

    def exposition(self) -> str:
        lines = []
        with self._lock:
            for name, help_text in _COUNTERS.items():
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
                lines += [f'{name}{{service="{_label(s)}"}} {_number(v)}' for s, v in sorted(self._counters[name].items())]
            name = "veil_sanitise_seconds"
            lines += [f"# HELP {name} Time to sanitise one image (strip, detect, mask, verify).", f"# TYPE {name} histogram"]
            for service, counts in sorted(self._latency.items()):
                label, cumulative = _label(service), 0
                for bound, count in zip((*LATENCY_BUCKETS, "+Inf"), counts):
                    cumulative += count
                    lines.append(f'{name}_bucket{{service="{label}",le="{bound}"}} {cumulative}')
                lines.append(f'{name}_sum{{service="{label}"}} {_number(self._latency_sum[service])}')
                lines.append(f'{name}_count{{service="{label}"}} {cumulative}')
            lines += ["# HELP veil_errors_total Failures by kind: " + "; ".join(f"{k}: {v}" for k, v in ERROR_KINDS.items()),
                      "# TYPE veil_errors_total counter"]  # fmt: skip
            lines += [f'veil_errors_total{{kind="{kind}"}} {count}' for kind, count in self._errors.items()]
        status = self.status()
        for gauge, value in (status.gauges or {}).items():
            lines += [f"# TYPE {gauge} gauge", f"{gauge} {_number(value)}"]
        lines += ["# HELP veil_ready 1 when /readyz answers 200.", "# TYPE veil_ready gauge", f"veil_ready {int(status.ready)}"]
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


class _Server(ThreadingHTTPServer):
    # Probes and scrapes can come in bursts while the proxy is busy: more room to queue
    # connections than socketserver's default backlog of 5.
    request_queue_size = 128
    daemon_threads = True


class MetricsServer:
    """GET /metrics, /healthz and /readyz on host:port in a daemon thread; stop() frees the port.

    /healthz answers 200 while the process can serve at all (a liveness probe restarts it
    otherwise); /readyz answers 503 with the reason while Veil should get no new uploads."""

    def __init__(self, metrics: Metrics, host: str, port: int):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                if path in ("/metrics", "/"):
                    self._answer(200, metrics.exposition(), "text/plain; version=0.0.4; charset=utf-8")
                elif path == "/healthz":
                    alive = metrics.status().alive
                    self._answer(200 if alive else 503, "ok\n" if alive else "the event loop has stalled\n")
                elif path == "/readyz":
                    status = metrics.status()
                    self._answer(200 if status.ready else 503, status.reason + "\n")
                else:
                    self.send_error(404)

            def _answer(self, code: int, text: str, content_type: str = "text/plain; charset=utf-8"):
                body = text.encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass  # scrapes every 15 s would drown mitmproxy's own log

        self._server = _Server((host, port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="veil-metrics", daemon=True)
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
