"""A local imitation of an AI web app's upload pages, served by the recording upstream under
the protected host names (chatgpt.com, files.oaiusercontent.com) the browser asks for.

- GET  /upload-page/form         a form posting the photo as multipart (Chromium writes the body)
- POST /upload-page/form-upload  answers with an HTML page saying what arrived
- GET  /upload-page/put          the ChatGPT pattern: declare the file's size to the app, then
                                 fetch() PUT the Blob, raw, to a blob-storage URL on another host
- POST /upload-page/api/files    answers with that upload URL
- PUT  /files/upload-page-<name> the blob store (CORS preflight included): answers 201
Everything else is left to the upstream's usual answers.
"""

import json

BLOB_HOST = "files.oaiusercontent.com"
APP_ORIGIN = "https://chatgpt.com"

FORM_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Upload (form)</title></head>
<body style="font: 20px sans-serif; margin: 40px">
<h1>Attach a photo</h1>
<form method="post" action="/upload-page/form-upload" enctype="multipart/form-data">
  <input type="hidden" name="purpose" value="vision">
  <input type="file" id="file" name="file" accept="image/*">
  <button id="send" type="submit">Send</button>
</form>
</body></html>
"""

PUT_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Upload (fetch PUT)</title></head>
<body style="font: 20px sans-serif; margin: 40px">
<h1>Attach a photo</h1>
<input type="file" id="file" accept="image/*">
<button id="send" onclick="upload()">Send</button>
<p id="answer">nothing sent yet</p>
<script>
async function upload() {
  const answer = document.getElementById("answer");
  try {
    const file = document.getElementById("file").files[0];
    const declared = await fetch("/upload-page/api/files", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({file_name: file.name, file_size: file.size, use_case: "multimodal"}),
    });
    const {upload_url} = await declared.json();
    const blob = new Blob([await file.arrayBuffer()], {type: file.type});
    const put = await fetch(upload_url, {
      method: "PUT", body: blob,
      headers: {"x-ms-blob-type": "BlockBlob", "x-ms-version": "2020-04-08", "Content-Type": file.type},
    });
    answer.textContent = "PUT " + put.status + ": " + await put.text();
  } catch (error) {
    answer.textContent = "failed: " + error;
  }
}
</script>
</body></html>
"""

_CORS = {
    "Access-Control-Allow-Origin": APP_ORIGIN,
    "Access-Control-Allow-Methods": "PUT, OPTIONS",
    "Access-Control-Allow-Headers": "content-type, x-ms-blob-type, x-ms-version",
}


def answer(method: str, host: str, route: str, body: bytes) -> tuple[int, dict, bytes] | None:
    """(status, headers, body) for the upload pages, or None for the upstream's usual answer."""
    html = {"Content-Type": "text/html; charset=utf-8"}
    if route == "/upload-page/form" and method == "GET":
        return 200, html, FORM_PAGE.encode()
    if route == "/upload-page/put" and method == "GET":
        return 200, html, PUT_PAGE.encode()
    if route == "/upload-page/form-upload" and method == "POST":
        page = f'<!doctype html><h1 id="answer">Upload received</h1><p>{len(body)} bytes of multipart form data</p>'
        return 200, html, page.encode()
    if route == "/upload-page/api/files" and method == "POST":
        declared = json.loads(body or b"{}")
        name = str(declared.get("file_name", "file")).replace("/", "_")
        url = f"https://{BLOB_HOST}/files/upload-page-{name}?se=2026-12-01&sp=cw&sig=test"
        return 200, {}, json.dumps({"status": "success", "upload_url": url, "file_id": "file-upload-page"}).encode()
    if route.startswith("/files/upload-page-") and host == BLOB_HOST:
        if method == "OPTIONS":
            return 200, dict(_CORS, **{"Content-Type": "text/plain"}), b""
        if method == "PUT":
            return 201, dict(_CORS), json.dumps({"stored_bytes": len(body)}).encode()
    return None
