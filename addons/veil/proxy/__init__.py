"""The mitmproxy side: hooks, and the request-level decisions they apply.

Layer rule: `proxy` may import `clean`, `policy` and `audit`; never `cli`.

- `addon`: mitmproxy hooks only: it translates a flow into a call to `pipeline` and applies
  the verdict (forward, rebuild, refuse) and the records.
- `pipeline`: one request, top to bottom: route, decode, find images, clean, rebuild, records.
- `envelopes/`: where images sit in a body, one module per wire format.
- `workers`, `admission`: cleaning in worker processes, and how much may queue.
- `integrity`: size and hash fields a service checks (Content-MD5, X-Goog-Upload-*, …).
- `content_encoding`, `exposure`, `metrics`, `pac`, `pac_addon`: as named.
"""
