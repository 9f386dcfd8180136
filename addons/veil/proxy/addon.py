"""The mitmproxy adapter: options, hooks, the worker pool, flow comments.

Everything that decides lives in `pipeline` (pure); this module only moves bytes
between mitmproxy flows and that logic, off the event loop.
"""

import asyncio
import json
import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mitmproxy import ctx, exceptions, http
from mitmproxy.proxy import layer

from ..audit import AuditLog, RequestFacts, Rotation, public_url
from ..audit import upstream_record as audit_upstream_record
from ..clean.errors import SanitiseError
from ..policy import (
    DEFAULT_POLICY_PATH,
    Match,
    Policy,
    PolicyError,
    load_policy,
    normalise_host,
)
from . import content_encoding, destinations, exposure, feedback, integrity, pipeline
from .admission import Admission, Overloaded
from .envelopes import multipart
from .metrics import Metrics, MetricsServer, Status
from .split_uploads import PieceRefused, SplitUploads
from .workers import WorkerCrashed, WorkerPool, WorkerTimeout

log = logging.getLogger("veil")

MATCH_KEY = "veil_match"
WEBSOCKET_KEY = "veil_websocket"  # the Match of a WebSocket upgrade on a protected host
OUTCOME_KEY = "veil_outcome"  # the RequestFacts of a forwarded request whose outcome is recorded
UNMATCHED_KEY = "veil_unmatched"  # an upload veil_decrypt_all opened that no rule covers: recorded as passed
UPLOAD_PART_KEY = "veil_upload_part"  # (upload id, part bytes as sent, changed) until the response names the part
# Records of refused uploads kept while the audit log cannot be written, written once it
# can again. Beyond this many, the oldest are dropped (and the drop is logged).
AUDIT_BACKLOG_LIMIT = 10_000
HOUSEKEEPING_SECONDS = 1.0
STALLED_LOOP_SECONDS = 10.0  # /healthz fails when the event loop has not run for this long
_MARKERS = {"sanitised": ":shield:", "monitored": ":eyes:", "blocked": ":no_entry:", "passed": ":warning:"}


def default_audit_log() -> Path:
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "veil" / "audit.jsonl"


class Veil:
    def __init__(self):
        self.policy: Policy | None = None
        self.audit: AuditLog | None = None
        self.pool: WorkerPool | None = None
        self.admission = Admission(workers=1, max_queued=0)
        # Request bodies are parsed here when large: off the event loop, apart from the
        # cleaning processes so a chat request never queues behind a photo.
        self.parser_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="veil-parse")
        self.metrics = Metrics()
        self.metrics.status = self.status
        self.metrics_server: MetricsServer | None = None
        self._host_options_set: tuple[list[str], list[str]] = ([], [])  # (allow_hosts, ignore_hosts) Veil set last
        self._running = False
        self.uploads = integrity.UploadLedger()  # OpenAI Uploads: parts as sent, for complete's md5
        self.split_uploads = SplitUploads()  # pieces of uploads in progress, held until the last
        self.in_flight: set[str] = set()  # protected flows from headers to response or error
        self.draining = False
        self.audit_failure: str | None = None  # why the last audit write failed, until one succeeds
        self.audit_backlog: list[dict] = []
        self._heartbeat = time.monotonic()
        self._housekeeping: asyncio.Task | None = None

    def load(self, loader):
        loader.add_option("veil_policy", str, str(DEFAULT_POLICY_PATH), "Veil's YAML policy file.")
        loader.add_option("veil_audit_log", str, str(default_audit_log()), "Veil's audit log (JSON lines, append-only).")
        loader.add_option(
            "veil_audit_rotate_bytes", int, 0, "Start a new audit file once it reaches this size (0: never)."
        )
        loader.add_option("veil_audit_rotate_daily", bool, False, "Start a new audit file each UTC day.")
        loader.add_option("veil_metrics_port", int, 0, "Serve Prometheus metrics on this port (0: off).")
        loader.add_option("veil_metrics_host", str, "127.0.0.1", "Address the metrics endpoint listens on.")
        loader.add_option(
            "veil_workers", int, max(1, os.cpu_count() or 1), "Worker processes cleaning images (one per core is right)."
        )
        loader.add_option(
            "veil_max_queued_images",
            int,
            32,
            "Images that may wait for a free worker. A protected upload that would queue more is "
            "answered 503 with Retry-After (or passed on, if its rule says on_error: allow).",
        )
        loader.add_option(
            "veil_drain_seconds",
            int,
            30,
            "On SIGTERM, how long to let uploads in flight finish before exiting. Meanwhile /readyz "
            "answers 503 and new uploads to clean are answered 503 so clients retry elsewhere.",
        )
        loader.add_option(
            "veil_decrypt_all",
            bool,
            False,
            "Decrypt every host but the policy's tunnel: list. By default only hosts the policy protects "
            "are decrypted; all other traffic is tunnelled untouched. An upload no rule covers is "
            "forwarded with a `passed` audit record (use protect: all-uploads to clean those too).",
        )
        loader.add_option(
            "veil_notify",
            bool,
            False,
            "Show a desktop notification when Veil blocks an upload (notify-send, osascript or a "
            "PowerShell toast; the host and the reason only, never the image).",
        )
        loader.add_option(
            "veil_allow_open_proxy",
            bool,
            False,
            "Allow listening on a non-loopback address without proxy authentication (proxyauth): "
            "an open proxy that decrypts traffic for anyone who can reach it.",
        )

    def configure(self, updated: set[str]):
        try:
            self._configure(updated)
        except exceptions.OptionsError as error:
            if self._running:
                raise  # mitmproxy keeps the previous, valid settings in force
            # At start-up a logged error makes mitmproxy exit: the message, without a traceback.
            log.error(str(error))

    def _configure(self, updated: set[str]):
        if "veil_policy" in updated:
            self.policy = _load_policy(ctx.options.veil_policy)
            _refuse_without_face_model(self.policy)
        if updated & {"veil_audit_log", "veil_audit_rotate_bytes", "veil_audit_rotate_daily"}:
            self._open_audit_log(ctx.options.veil_audit_log)
        if updated & {"veil_metrics_port", "veil_metrics_host"}:
            self._serve_metrics(ctx.options.veil_metrics_host, ctx.options.veil_metrics_port)
        if "veil_workers" in updated:
            self._start_pool(ctx.options.veil_workers)
        if updated & {"veil_workers", "veil_max_queued_images"}:
            if ctx.options.veil_max_queued_images < 0:
                raise exceptions.OptionsError("veil_max_queued_images must be 0 or more")
            self.admission = Admission(ctx.options.veil_workers, ctx.options.veil_max_queued_images)
        if updated & {"veil_policy", "veil_decrypt_all", "allow_hosts", "ignore_hosts"}:
            self._decrypt_only_protected_hosts(updated)
        if updated & {"veil_policy", "stream_large_bodies"}:
            _refuse_streaming_of_protected_bodies(self.policy)
        if updated & {"listen_host", "mode", "proxyauth", "veil_allow_open_proxy"}:
            exposure.refuse_open_proxy(
                ctx.options.mode, ctx.options.listen_host, ctx.options.proxyauth, ctx.options.veil_allow_open_proxy
            )
        if updated & {"veil_policy", "proxyauth"} and self.policy and self.policy.names_users():
            if not ctx.options.proxyauth:
                log.warning(
                    "Veil: the policy has rules for certain users or groups, but proxy authentication is off "
                    "(set proxyauth): no request has a user, so those rules never apply"
                )

    def _open_audit_log(self, path: str):
        if ctx.options.veil_audit_rotate_bytes < 0:
            raise exceptions.OptionsError("veil_audit_rotate_bytes must be 0 (never) or a size in bytes")
        rotation = Rotation(ctx.options.veil_audit_rotate_bytes, ctx.options.veil_audit_rotate_daily)
        previous = self.audit
        # One writer per log (a lock held for the writer's life): reopening the same file,
        # for new rotation settings, must let go of it first.
        same_file = previous is not None and previous.path == Path(path)
        if same_file:
            previous.close()
        try:
            # Writes happen on the event loop, as does this: the old writer is idle, so the
            # new one reads the final end of the chain.
            audit = AuditLog(path, rotation)
        except OSError as error:
            if same_file:
                self.audit = AuditLog(path, previous.rotation)  # keep writing as before
            raise exceptions.OptionsError(f"veil_audit_log: cannot open {path}: {error.strerror or error}") from None
        if previous and not same_file:
            previous.close()
        self.audit = audit

    def _serve_metrics(self, host: str, port: int):
        if self.metrics_server:
            self.metrics_server.stop()
            self.metrics_server = None
        if not port:
            return
        try:
            self.metrics_server = MetricsServer(self.metrics, host, port)
        except OSError as error:
            raise exceptions.OptionsError(f"veil_metrics_port: cannot listen on {host}:{port}: {error.strerror}") from None
        log.info(f"Veil: Prometheus metrics on http://{host}:{self.metrics_server.port}/metrics")

    def _start_pool(self, workers: int):
        if workers < 1:
            raise exceptions.OptionsError("veil_workers must be at least 1")
        self._stop_pool(wait=False)
        self.pool = WorkerPool(workers)

    def _decrypt_only_protected_hosts(self, updated: set[str]):
        """Derive allow_hosts (the protected hosts; none under all-uploads or veil_decrypt_all:
        every host) and ignore_hosts (the policy's tunnel: list) from the policy, unless the
        operator chose either option themselves."""
        current = (list(ctx.options.allow_hosts), list(ctx.options.ignore_hosts))
        if any(current) and current != self._host_options_set:
            return
        allow = [] if ctx.options.veil_decrypt_all else self.policy.allow_hosts_patterns()
        wanted = (allow, self.policy.ignore_hosts_patterns())
        self._host_options_set = wanted
        if current != wanted:
            ctx.options.update(allow_hosts=wanted[0], ignore_hosts=wanted[1])

    def next_layer(self, nextlayer: layer.NextLayer):
        """`unnamed_destinations: block`: a connection that would be tunnelled unopened to a
        bare IP address whose TLS handshake names no server is closed instead, with a record.
        (Runs before mitmproxy's own next_layer, which then leaves the layer set here alone.)
        Where every host is decrypted, the requests themselves are refused (requestheaders)."""
        policy = self.policy
        if policy is None or policy.unnamed_destinations != "block" or nextlayer.layer is not None:
            return
        context = nextlayer.context
        host, port = context.server.address or (None, 0)
        decrypted = ctx.options.veil_decrypt_all or policy.protects_all_uploads or policy.protects_host(host or "")
        if context.client.tls_established or decrypted or not destinations.is_bare_ip(host) or policy.is_tunnelled(host):
            return
        if not destinations.names_no_server(nextlayer.data_client()):
            return  # it names its server (judged by allow_hosts as usual), or more bytes are needed
        nextlayer.layer = destinations.Closed(context)
        client = context.client.peername[0] if context.client.peername else "unknown"
        record = destinations.unnamed_record(client, host, port)
        if not self._record([record]):
            self._keep_for_later(record)
        log.info(f"Veil: closed a connection to {host}:{port}: {destinations.UNNAMED_REASON}")

    def running(self):
        self._running = True
        if self.policy is None:
            return  # start-up failed and was logged; mitmproxy is exiting
        for message in exposure.protect_ca_key(Path(ctx.options.confdir).expanduser()):
            log.warning(f"Veil: {message}")
        self.pool.warm_up()
        self._drain_on_sigterm()
        self._housekeeping = asyncio.get_running_loop().create_task(self._keep_house())
        log.info(
            f"Veil is protecting {len(self.policy.services)} services ({len(self.policy.hosts())} hosts)"
            f"{' and every other upload (protect: all-uploads)' if self.policy.protects_all_uploads else ''}; "
            f"audit log: {ctx.options.veil_audit_log}"
        )

    def done(self):
        if self._housekeeping:
            self._housekeeping.cancel()
        self._flush_audit_backlog()
        if self.pool and self.admission.cleaning:
            self.pool.kill()  # past the drain: what is still being cleaned will never be sent
        self._stop_pool(wait=True)
        self.parser_pool.shutdown(wait=True)
        self.split_uploads.held.close()
        if self.audit:
            self.audit.close()
        if self.metrics_server:
            self.metrics_server.stop()

    def _stop_pool(self, wait: bool):
        if self.pool:
            self.pool.shutdown(wait=wait)
            self.pool = None

    def status(self) -> Status:
        """For /readyz and the gauges; read from the metrics server's thread."""
        gauges = {
            "veil_images_cleaning": self.admission.cleaning,
            "veil_images_waiting": self.admission.waiting,
            "veil_uploads_in_flight": len(self.in_flight),
            "veil_audit_backlog_records": len(self.audit_backlog),
            "veil_event_loop_lag_seconds": round(time.monotonic() - self._heartbeat, 3),
        }
        alive = not self._running or time.monotonic() - self._heartbeat < STALLED_LOOP_SECONDS
        if self.policy is None or self.pool is None:
            return Status(False, "not started", gauges, alive)
        if self.draining:
            return Status(False, f"draining: {len(self.in_flight)} upload(s) in flight", gauges, alive)
        if self.audit_failure:
            return Status(False, f"the audit log cannot be written: {self.audit_failure}", gauges, alive)
        return Status(True, "ready", gauges, alive)

    async def _keep_house(self):
        """Once a second: show the event loop is alive, and retry a failing audit log."""
        while True:
            self._heartbeat = time.monotonic()
            try:
                if self.audit_backlog:
                    self._flush_audit_backlog()
            except Exception:  # a dead housekeeper would make /healthz report a stalled loop
                log.exception("Veil: retrying the audit log failed unexpectedly")
            await asyncio.sleep(HOUSEKEEPING_SECONDS)

    def _drain_on_sigterm(self):
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self._begin_draining)
        except (NotImplementedError, RuntimeError):
            pass  # no signal handlers here (Windows, or not the main thread): mitmproxy's own apply

    def _begin_draining(self):
        if self.draining:
            log.warning("Veil: second SIGTERM; exiting without waiting for uploads in flight")
            ctx.master.shutdown()
            return
        self.draining = True
        seconds = ctx.options.veil_drain_seconds
        log.info(f"Veil: SIGTERM; draining {len(self.in_flight)} upload(s) in flight (at most {seconds} s) before exiting")
        asyncio.get_running_loop().create_task(self._drain_then_exit(seconds))

    async def _drain_then_exit(self, seconds: float):
        deadline = time.monotonic() + seconds
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.in_flight:
            log.warning(f"Veil: {len(self.in_flight)} upload(s) still in flight after {seconds} s; exiting anyway")
        await asyncio.sleep(0.2)  # let the last responses leave the sockets
        ctx.master.shutdown()

    def requestheaders(self, flow: http.HTTPFlow):
        # mitmproxy's proxyauth addon runs before script addons: by now a request over an
        # authenticated connection carries its (user, password), and an unauthenticated one
        # already has its 407 response (request() then leaves it alone).
        if self.policy is None:  # no policy in force (start-up failed): nothing may pass unjudged
            _answer_blocked(flow, "Veil has no policy loaded", 503, retry_after=5)
            return
        user = _user(flow)
        request = flow.request
        # The destination is where the bytes go: the connection's host (the CONNECT target,
        # or the absolute URL), never the Host header alone.
        if _is_websocket_handshake(request):
            # The upgrade is a GET, which the default methods (POST, PUT, PATCH) would not
            # match: the first rule whose paths match decides, whatever its methods.
            match = self.policy.match_any_method(request.host, request.path, user)
            if match is not None:
                flow.metadata[WEBSOCKET_KEY] = match
            return
        if self.policy.unnamed_destinations == "block" and destinations.is_bare_ip(request.host) and not flow.client_conn.sni:
            self._refuse_unnamed(flow)
            return
        match = self._match(request.host, request, user)
        named = self._names_another_protected_host(flow)
        if match is None and named is not None:  # the Host header or SNI names a protected service
            match = self._match(named, request, user)
        if match is None:
            # Decrypting everything must not mean forwarding uploads silently: say what passed.
            if ctx.options.veil_decrypt_all and destinations.carries_upload(request.method, _carries_body(request)):
                flow.metadata[UNMATCHED_KEY] = Match(destinations.UNMATCHED_SERVICE, "veil_decrypt_all", self.policy.defaults)
            return
        flow.metadata[MATCH_KEY] = match
        request.stream = False  # a protected body is never forwarded before it is examined
        self.in_flight.add(flow.id)

    def _match(self, host: str, request: http.Request, user: str | None) -> Match | None:
        """The policy's rule for the request; a request of another method (a GET, a DELETE)
        that carries a body is judged by the first rule whose paths match, like an upload:
        a server may well read that body."""
        match = self.policy.match(host, request.path, request.method, user)
        if match is None and _carries_body(request):
            match = self.policy.match_any_method(host, request.path, user)
        return match

    def _names_another_protected_host(self, flow: http.HTTPFlow) -> str | None:
        """The Host header or TLS server name when it differs from the connection's host and
        either side is protected: a server (or a CDN in front of it) may route by the name
        while Veil would judge by the address, so such a request is refused."""
        request = flow.request
        destination = normalise_host(request.host)
        for named in (request.pretty_host, flow.client_conn.sni):
            if named and normalise_host(named) != destination:
                if self.policy.protects_host(named) or self.policy.protects_host(destination):
                    return normalise_host(named)
        return None

    def _refuse_unnamed(self, flow: http.HTTPFlow):
        match = Match(destinations.UNNAMED_SERVICE, "unnamed_destinations", self.policy.defaults)
        refusal = pipeline.RequestRefused(destinations.UNNAMED_REASON)
        self._refuse(flow, [pipeline.refusal_record(_facts(flow, match), refusal.reason)], refusal)

    async def request(self, flow: http.HTTPFlow):
        if WEBSOCKET_KEY in flow.metadata and not flow.response:
            self._websocket_upgrade(flow, flow.metadata[WEBSOCKET_KEY])
            return
        unmatched: Match | None = flow.metadata.pop(UNMATCHED_KEY, None)
        if unmatched is not None and not flow.response:
            self._record_unmatched(flow, unmatched)
            return
        match: Match | None = flow.metadata.get(MATCH_KEY)
        if match is None or flow.response:
            return
        if match.rule.action == "sanitise" and self._held_as_a_piece(flow, match):
            return
        request = pipeline.Request(
            flow.request.method, flow.request.path, flow.request.headers, flow.request.raw_content or b"", _facts(flow, match)
        )
        if self.draining and match.rule.action in ("sanitise", "monitor"):
            self.metrics.count_error("draining")
            refusal = pipeline.RequestRefused("Veil is shutting down; retry the upload", status=503, retry_after=1)
            decision = pipeline.Decision([pipeline.refusal_record(request.facts, refusal.reason)], refusal)
        elif (named := self._names_another_protected_host(flow)) is not None:
            refusal = pipeline.RequestRefused(
                f"the request names {named} (Host header or TLS server name) but is sent to "
                f"{normalise_host(flow.request.host)}; Veil judges a request by where its bytes go, so it refuses the mismatch"
            )
            decision = pipeline.Decision([pipeline.refusal_record(request.facts, refusal.reason)], refusal)
        else:
            decision = await pipeline.examine(request, match, pipeline.Helpers(self._clean_all, self._run_blocking))
        if self._apply(flow, decision) and not flow.response:
            self._follow_openai_upload(flow, decision)

    def _record_unmatched(self, flow: http.HTTPFlow, unmatched: Match):
        """An upload veil_decrypt_all opened that no rule covers: forwarded, and said so."""
        facts = _facts(flow, unmatched)
        if not self._record([destinations.unmatched_record(facts)]):
            refusal = self._audit_refusal()
            self._refuse(flow, [pipeline.refusal_record(facts, refusal.reason)], refusal)
            return
        flow.comment = f"Veil: {destinations.UNMATCHED_REASON}"
        flow.marked = _MARKERS["passed"]

    def _held_as_a_piece(self, flow: http.HTTPFlow, match: Match) -> bool:
        """A piece of an upload split over several requests (split_uploads.py): held and
        answered by Veil, or refused (True); or the last piece, which then carries the whole
        file and is examined like any request (False). False for any other request."""
        limit = match.rule.limits.max_body_bytes
        try:
            body = pipeline.decoded_body(flow.request.raw_content or b"", flow.request.headers, limit)
        except pipeline.RequestRefused:
            return False  # examine() refuses it with its own record
        piece = self.split_uploads.piece(flow.request.method, flow.request.path, flow.request.headers, body, limit)
        if piece is None:
            return False
        if piece.refusal:
            refusal = pipeline.RequestRefused(piece.refusal)
            self._refuse(flow, [pipeline.refusal_record(_facts(flow, match), refusal.reason)], refusal)
            return True
        if piece.answer:
            status, headers, content = piece.answer
            flow.response = http.Response.make(status, content, headers | {"X-Veil": "held"})
            flow.comment = "Veil: held this piece of a split upload; the whole file is cleaned and sent with the last piece"
            return True
        whole, headers = piece.whole
        flow.request.content = whole  # mitmproxy re-applies Content-Encoding and Content-Length
        for name, value in headers.items():
            flow.request.headers[name] = value
        return False

    def _websocket_upgrade(self, flow: http.HTTPFlow, match: Match):
        """Veil does not read WebSocket frames: `unparsed_bodies` (or action: block) decides."""
        facts = _facts(flow, match)
        decision = pipeline.websocket_decision(match.rule)
        if decision == "block":
            reason = (f"the policy blocks uploads to {match.service}" if match.rule.action == "block"
                      else "WebSocket frames cannot be inspected by Veil, and the policy blocks what it cannot inspect")  # fmt: skip
            self._refuse(flow, [pipeline.refusal_record(facts, reason)], pipeline.RequestRefused(reason))
        elif decision == "log":
            if not self._record([pipeline.websocket_record(facts)]):
                refusal = self._audit_refusal()
                self._refuse(flow, [pipeline.refusal_record(facts, refusal.reason)], refusal)
                return
            flow.comment = "Veil: WebSocket frames are not inspected (allowed by the policy)"
            flow.marked = _MARKERS["passed"]

    def error(self, flow: http.HTTPFlow):
        """The connection failed after Veil let the upload go: an upstream reset or time-out,
        or the client gave up. What was sent was already clean; the client sees mitmproxy's
        502 (or its own error), and the operator sees it here and in veil_errors_total."""
        facts = flow.metadata.pop(OUTCOME_KEY, None)
        if facts is not None:
            self._record_outcome(audit_upstream_record(facts, error=flow.error.msg if flow.error else "the connection failed"))
        if flow.id in self.in_flight:
            self.in_flight.discard(flow.id)
            match: Match = flow.metadata[MATCH_KEY]
            self.metrics.count_error("upstream")
            log.warning(f"Veil: upload to {match.service} failed after Veil's decision: {flow.error.msg if flow.error else 'unknown error'}")

    def response(self, flow: http.HTTPFlow):
        self.in_flight.discard(flow.id)
        facts = flow.metadata.pop(OUTCOME_KEY, None)
        if facts is not None and flow.response is not None:
            self._record_outcome(audit_upstream_record(facts, status=flow.response.status_code))
        if MATCH_KEY in flow.metadata and flow.response is not None and "X-Veil" not in flow.response.headers:
            request = flow.request
            self.split_uploads.learn(
                request.method, request.pretty_host, request.path, request.headers, request.get_content(strict=False) or b"",
                flow.response.status_code, flow.response.headers, flow.response.get_content(strict=False) or b"",
            )  # fmt: skip
        pending = flow.metadata.pop(UPLOAD_PART_KEY, None)
        if pending is None or flow.response is None or flow.response.status_code >= 300:
            return
        try:
            part_id = json.loads(flow.response.get_content(strict=False) or b"{}").get("id")
        except (ValueError, AttributeError):
            return
        if isinstance(part_id, str):
            upload_id, data, changed = pending
            self.uploads.part_received(upload_id, part_id, data, changed)

    def _follow_openai_upload(self, flow: http.HTTPFlow, decision: pipeline.Decision):
        """OpenAI Uploads: remember each part as sent; give `complete` the md5 of those bytes."""
        path = flow.request.path
        upload_id = integrity.upload_part_id(path)
        if upload_id:
            data = multipart.field_content(flow.request.content or b"", flow.request.headers.get("content-type"), "data")
            if data is not None:
                flow.metadata[UPLOAD_PART_KEY] = (upload_id, data, decision.new_body is not None)
            return
        upload_id = integrity.upload_complete_id(path)
        if upload_id:
            try:
                listed = self.split_uploads.complete_body(path, flow.request.content or b"")
            except PieceRefused as refused:
                refusal = pipeline.RequestRefused(refused.reason)
                self._refuse(flow, [pipeline.refusal_record(_facts(flow, flow.metadata[MATCH_KEY]), refusal.reason)], refusal)
                return
            if listed is not None:
                flow.request.content = listed
            fixed = self.uploads.complete_body(upload_id, flow.request.content or b"")
            if fixed is not None:
                flow.request.content = fixed
                flow.comment = "Veil: md5 recomputed for the parts it cleaned"

    async def _run_blocking(self, function, *args):
        """Large bodies are parsed and scanned here: off the event loop, apart from the
        cleaning processes so a chat request never queues behind a photo."""
        return await asyncio.get_running_loop().run_in_executor(self.parser_pool, function, *args)

    async def _clean_all(self, slots, rule) -> list[pipeline.ImageOutcome]:
        admission = self.admission
        try:
            admission.admit(len(slots))
        except Overloaded as overload:
            self.metrics.count_error("overloaded")
            if rule.on_error == "allow" or rule.action == "monitor":
                return [pipeline.judge(slot, rule, None, SanitiseError(overload.reason), 0.0) for slot in slots]
            raise pipeline.RequestRefused(overload.reason, status=503, retry_after=overload.retry_after) from None
        try:
            return list(await asyncio.gather(*(self._clean_one(slot, rule, admission) for slot in slots)))
        finally:
            admission.release(len(slots))

    async def _clean_one(self, slot, rule, admission: Admission) -> pipeline.ImageOutcome:
        timeout = rule.limits.image_timeout_seconds
        async with admission.worker():
            try:
                result, error, ms = await self.pool.clean(slot.image, rule.sanitise_options(), timeout)
            except WorkerTimeout:
                self.metrics.count_error("worker_timeout")
                return pipeline.timed_out(slot, rule, timeout)
            except WorkerCrashed:
                # Say, a native crash in a decoder: this image fails closed, the pool was replaced.
                self.metrics.count_error("worker_crash")
                return pipeline.judge(slot, rule, None, SanitiseError("the image crashed Veil's image cleaner"), 0.0)
        admission.observe(ms / 1000)
        return pipeline.judge(slot, rule, result, error, ms)

    def _apply(self, flow: http.HTTPFlow, decision: pipeline.Decision) -> bool:
        """Write the decision's records, then forward or refuse as it says; False when the
        upload was refused (by the decision, or because its records could not be written)."""
        if decision.refusal:
            self._refuse(flow, decision.records, decision.refusal)
            return False
        if not self._record(decision.records):
            refusal = self._audit_refusal()
            self._refuse(flow, [pipeline.refusal_record(_facts(flow, flow.metadata[MATCH_KEY]), refusal.reason)], refusal)
            return False
        if decision.records:  # what was let through is followed to its outcome
            flow.metadata[OUTCOME_KEY] = _facts(flow, flow.metadata[MATCH_KEY])
        self._tell(flow, decision)
        verdict = decision.verdict
        if decision.new_body is not None:
            if content_encoding.codings(flow.request.headers.get("transfer-encoding", "")) not in ([], ["chunked"]):
                flow.request.headers["transfer-encoding"] = "chunked"  # the codings Veil undid are gone
            flow.request.content = decision.new_body  # mitmproxy re-applies Content-Encoding and Content-Length
            fixes = integrity.header_fixes(flow.request.headers, flow.request.raw_content or b"", decision.resized())
            for name, value in fixes.items():
                flow.request.headers[name] = value
        if verdict.outcomes or verdict.references or verdict.unparsed or verdict.notes:
            flow.comment = pipeline.summary(verdict)
            first = verdict.outcomes[0].event if verdict.outcomes else "passed"
            flow.marked = _MARKERS[first]
        return True

    def _record_outcome(self, record: dict):
        """The outcome of a request already let through: kept for later if the log is failing
        now (nothing can be refused any more)."""
        if not self._record([record]):
            self._keep_for_later(record)

    def _tell(self, flow: http.HTTPFlow, decision: pipeline.Decision):
        """One console line per intervention, for the person watching the proxy."""
        line = feedback.console_line(flow.request.pretty_host, decision)
        if line:
            log.info(line)

    def _refuse(self, flow: http.HTTPFlow, records: list[dict], refusal: pipeline.RequestRefused):
        """Answer the request with the refusal; its records are kept for later when the log
        cannot take them now (nothing was forwarded, so nothing is unaccounted for)."""
        if not self._record(records):
            for record in records:
                self._keep_for_later(record)
        _answer_blocked(flow, refusal.reason, refusal.status, refusal.retry_after)
        if self.draining and flow.request.http_version.startswith("HTTP/1"):
            # The retry must open a new connection, which the load balancer sends to another
            # instance; on this kept-alive one it would come back here. (HTTP/2 has no such
            # header; its connection ends when Veil exits.)
            flow.response.headers["Connection"] = "close"
        flow.comment = f"Veil blocked this upload: {refusal.reason}"
        flow.marked = _MARKERS["blocked"]
        log.warning(feedback.blocked_line(flow.request.pretty_host, refusal.reason))
        if ctx.options.veil_notify:
            feedback.notify_blocked(flow.request.pretty_host, refusal.reason)

    def _record(self, records: list[dict]) -> bool:
        """Write a request's records (after any kept from a failing spell), all or none;
        False when the audit log cannot be written."""
        if not records:
            return True  # a chat request without images: nothing to account for
        return self._flush_audit_backlog() and self._write(records)

    def _write(self, records: list[dict]) -> bool:
        try:
            self.audit.write_all(records)  # the chained log first: metrics never count what the log lacks
        except OSError as error:
            self.metrics.count_error("audit_write")
            if self.audit_failure is None:
                log.error(f"Veil: cannot write the audit log {self.audit.path}: {error.strerror or error}; "
                          "protected uploads are refused until it can be written")  # fmt: skip
            self.audit_failure = error.strerror or str(error)
            return False
        for record in records:
            self.metrics.observe(record)
        return True

    def _audit_refusal(self) -> pipeline.RequestRefused:
        reason = f"Veil cannot write its audit log ({self.audit_failure}) and forwards nothing it cannot account for"
        return pipeline.RequestRefused(reason, status=503, retry_after=5)

    def _flush_audit_backlog(self) -> bool:
        if not self.audit_backlog:
            return True
        if not self._write(self.audit_backlog):
            return False
        log.warning(f"Veil: the audit log can be written again; {len(self.audit_backlog)} record(s) of refused uploads written")
        self.audit_backlog, self.audit_failure = [], None
        return True

    def _keep_for_later(self, record: dict):
        self.audit_backlog.append(record)
        if len(self.audit_backlog) > AUDIT_BACKLOG_LIMIT:
            del self.audit_backlog[0]
            log.error(f"Veil: more than {AUDIT_BACKLOG_LIMIT} audit records waiting for a writable log; dropped the oldest")


def _load_policy(path: str) -> Policy:
    try:
        return load_policy(path)
    except PolicyError as error:
        raise exceptions.OptionsError(f"Veil will not start on this policy:\n{error}") from None


def _refuse_without_face_model(policy: Policy):
    """A policy that masks faces needs the model: say so at start-up with the fix, not as
    'could not be processed' on the first photo."""
    from ..clean.faces.detector import model_problem
    from ..clean.options import FaceMode

    rules = [policy.defaults] + [route.rule for service in policy.services for route in service.routes]
    if any(rule.faces is not FaceMode.OFF and rule.action != "allow" for rule in rules):
        problem = model_problem()
        if problem:
            raise exceptions.OptionsError(f"Veil cannot mask faces: {problem}")


def _refuse_streaming_of_protected_bodies(policy: Policy | None):
    """A streamed body reaches the service before Veil has seen it: never for a protected route."""
    from mitmproxy.utils import human

    limit = ctx.options.stream_large_bodies
    if policy is None or not limit:
        return
    largest = policy.largest_body_limit()
    if human.parse_size(limit) < largest:
        raise exceptions.OptionsError(
            f"stream_large_bodies={limit} would forward protected uploads before Veil examines them; "
            f"unset it or raise it above the policy's largest max_body_bytes ({largest} bytes)"
        )


def _user(flow: http.HTTPFlow) -> str | None:
    """The proxy-auth user name mitmproxy's proxyauth addon verified, or None."""
    auth = flow.metadata.get("proxyauth")
    return auth[0] if auth else None


def _facts(flow: http.HTTPFlow, match: Match) -> RequestFacts:
    request = flow.request
    return RequestFacts(
        client=flow.client_conn.peername[0] if flow.client_conn.peername else "unknown",
        user=_user(flow),
        service=match.service,
        rule=match.rule_name,
        method=request.method,
        url=public_url(request.scheme, request.pretty_host, request.port, request.path),
        request_id=flow.id,
    )


def _is_websocket_handshake(request: http.Request) -> bool:
    """A WebSocket opening handshake (RFC 6455 4.1): a GET without a body, asking to upgrade,
    with a key and a version. Anything else that says `Upgrade: websocket` (a POST with a
    body, say) is an ordinary request and its body is inspected as one."""
    headers = request.headers
    return (
        request.method == "GET"
        and headers.get("upgrade", "").strip().lower() == "websocket"
        and "upgrade" in headers.get("connection", "").lower()
        and bool(headers.get("sec-websocket-key"))
        and headers.get("sec-websocket-version", "").strip() == "13"
        and not _carries_body(request)
    )


def _carries_body(request: http.Request) -> bool:
    """Judged from the headers alone, before the body has arrived."""
    length = request.headers.get("content-length", "0").strip()
    return "transfer-encoding" in request.headers or length not in ("", "0")


def _answer_blocked(flow: http.HTTPFlow, reason: str, status: int = 403, retry_after: int | None = None):
    """OpenAI-style error JSON, so SDKs surface the reason to the person. A 503 carries
    Retry-After: the SDKs' retry logic honours it."""
    body = {"error": {"type": "veil_blocked", "code": "veil_blocked", "message": f"Veil blocked this upload: {reason}"}}
    headers = {"Content-Type": "application/json", "X-Veil": "blocked"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    flow.response = http.Response.make(status, json.dumps(body).encode(), headers)
