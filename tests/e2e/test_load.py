"""Load at CI size: 120 photo uploads from 16 concurrent clients through a real mitmdump
with Veil and the default policy. The same core as scripts/load_test (1,000 uploads),
see tests/e2e/load.py: every upload answered 2xx by the upstream (no 503, no error), each
arrived exactly once and clean, faces masked (re-detected on a spread sample of arrivals),
exactly one "sanitised" audit record per upload, matching what was sent and what arrived,
with an intact hash chain."""

import pytest

from e2e import load
from e2e.conftest import start_mitmdump
from e2e.upstream import RecordingUpstream

UPLOADS = 120
CLIENTS = 16
FACE_SAMPLE = 12  # spread evenly: every kind of request, every photo layout


@pytest.mark.slow
def test_uploads_from_concurrent_clients_all_arrive_clean_with_one_audit_record_each(tmp_path):
    pytest.importorskip("piexif")
    uploads = load.build_uploads(UPLOADS)
    with RecordingUpstream() as upstream:
        proxy = start_mitmdump(tmp_path, upstream.port)
        try:
            load.wait_until_idle(proxy)  # the workers have loaded the face model
            run = load.run_clients(proxy, uploads, CLIENTS)
        finally:
            load.stop_proxy(proxy)
        received = list(upstream.received)
    checks = load.check_veil_run(run, uploads, received, proxy.audit_log, faces_on=FACE_SAMPLE)
    assert load.failures(checks) == [], proxy.output()[-3000:]
