"""Prometheus metrics: counters and the latency histogram, scraped over HTTP."""

import urllib.request

from veil.proxy.metrics import Metrics, MetricsServer


def test_counters_and_histogram_follow_the_audit_records():
    metrics = Metrics()
    metrics.observe({"event": "sanitised", "service": "openai-api", "faces": 2, "duration_ms": 40.0})
    metrics.observe({"event": "sanitised", "service": "openai-api", "faces": 0, "duration_ms": 3000.0})
    metrics.observe({"event": "blocked", "service": "claude-web", "faces": 0})
    metrics.observe({"event": "log_repaired"})  # not an upload
    text = metrics.exposition()
    assert 'veil_uploads_seen_total{service="openai-api"} 2' in text
    assert 'veil_uploads_seen_total{service="claude-web"} 1' in text
    assert 'veil_uploads_blocked_total{service="claude-web"} 1' in text
    assert 'veil_faces_masked_total{service="openai-api"} 2' in text
    assert 'veil_sanitise_seconds_bucket{service="openai-api",le="0.05"} 1' in text
    assert 'veil_sanitise_seconds_bucket{service="openai-api",le="2.5"} 1' in text
    assert 'veil_sanitise_seconds_bucket{service="openai-api",le="5.0"} 2' in text
    assert 'veil_sanitise_seconds_bucket{service="openai-api",le="+Inf"} 2' in text
    assert 'veil_sanitise_seconds_sum{service="openai-api"} 3.04' in text
    assert "# TYPE veil_sanitise_seconds histogram" in text and "# TYPE veil_uploads_seen_total counter" in text


def test_label_values_are_escaped():
    metrics = Metrics()
    metrics.observe({"event": "passed", "service": 'we"ird\\name'})
    assert 'service="we\\"ird\\\\name"' in metrics.exposition()


def test_the_endpoint_serves_the_text_format_on_localhost():
    metrics = Metrics()
    metrics.observe({"event": "sanitised", "service": "gemini-api", "faces": 1, "duration_ms": 10})
    server = MetricsServer(metrics, "127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            body = response.read().decode()
            assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert 'veil_uploads_sanitised_total{service="gemini-api"} 1' in body
    finally:
        server.stop()
