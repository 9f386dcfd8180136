"""Opt-in Prometheus metrics (`--set veil_metrics_port=9464`), in the text exposition
format written here (a few counters do not need a client library).

Counters per service: uploads seen, sanitised, blocked, faces masked; a histogram of
the time to sanitise one image. Fed from the same records the audit log gets, so the
two always agree. Served on 127.0.0.1 by default: the labels name services.
"""

import threading
from bisect import bisect_left
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)  # seconds
_COUNTERS = {
    "veil_uploads_seen_total": "Images seen in protected uploads (one per audit record).",
    "veil_uploads_sanitised_total": "Images sanitised and forwarded.",
    "veil_uploads_blocked_total": "Uploads blocked (by policy or because an image could not be cleaned).",
    "veil_faces_masked_total": "Faces masked in forwarded images.",
}


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self._counters: dict[str, dict[str, float]] = {name: defaultdict(float) for name in _COUNTERS}
        self._latency: dict[str, list[int]] = defaultdict(lambda: [0] * (len(LATENCY_BUCKETS) + 1))
        self._latency_sum: dict[str, float] = defaultdict(float)

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
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


class MetricsServer:
    """GET /metrics on host:port in a daemon thread; stop() frees the port."""

    def __init__(self, metrics: Metrics, host: str, port: int):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = metrics.exposition().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass  # scrapes every 15 s would drown mitmproxy's own log

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="veil-metrics", daemon=True)
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
