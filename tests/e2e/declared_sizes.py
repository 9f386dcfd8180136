"""The recording upstream's answers for flows that declare a file's size before its bytes,
checked as the real services do: a size or hash that does not match what arrived is
refused (ChatGPT's `file_size_mismatch`, Google's resumable length, OpenAI Uploads' bytes
and md5, DeepSeek's x-file-size, Azure's Content-MD5, the `content-length-range` and
`Content-Type` conditions of an S3 presigned POST policy)."""

import base64
import hashlib
import json
import re
import threading

OPENAI_FILE = {"id": "file-1", "object": "file", "bytes": 1, "created_at": 0, "filename": "photo.jpg",
               "purpose": "vision", "status": "processed"}  # fmt: skip

_GEMINI_FILE = {"file": {"name": "files/abc", "displayName": "photo.jpg", "mimeType": "image/jpeg",
                         "sizeBytes": "1", "uri": "https://generativelanguage.googleapis.com/v1/files/abc",
                         "state": "ACTIVE"}}  # fmt: skip


# Le Chat's Azure storage account has not been captured; a made-up one, added to the policy as
# its comment tells operators to do.
MISTRAL_BLOB_HOST = "lechatuploads.blob.core.windows.net"


class _Declared:
    def __init__(self):
        self.lock = threading.Lock()
        self.counter = 0
        self.sizes: dict[str, int] = {}  # ChatGPT file id / Google upload id / OpenAI upload id -> declared size
        self.blobs: dict[str, int] = {}  # ChatGPT file id -> bytes the blob PUT delivered
        self.parts: dict[str, dict[str, bytes]] = {}  # OpenAI upload id -> part id -> data

    def next_id(self, prefix: str) -> str:
        with self.lock:
            self.counter += 1
            return f"{prefix}{self.counter}"


DECLARED = _Declared()


def multipart_field(body: bytes, content_type: str, name: str) -> bytes | None:
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"').encode()
    for part in body.split(b"--" + boundary)[1:-1]:
        head, _, content = part.partition(b"\r\n\r\n")
        if f'name="{name}"'.encode() in head:
            return content[: -len(b"\r\n")]
    return None


def content_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def _json(status: int, document, headers: dict | None = None) -> tuple[int, dict, bytes]:
    return status, headers or {}, json.dumps(document).encode()


def _openai_upload(upload_id: str, declared: dict, status: str) -> dict:
    return {"id": upload_id, "object": "upload", "bytes": declared["bytes"], "created_at": 0, "expires_at": 3600,
            "filename": declared.get("filename", "photo.jpg"), "purpose": declared.get("purpose", "vision"), "status": status}  # fmt: skip


def answer(method: str, host: str, path: str, headers: dict, body: bytes) -> tuple[int, dict, bytes] | None:
    route, _, query = path.partition("?")
    if host == "chatgpt.com" and route == "/backend-api/files":
        file_id = DECLARED.next_id("file-")
        DECLARED.sizes[file_id] = json.loads(body)["file_size"]
        url = f"https://sdmntprwestus.oaiusercontent.com/files/{file_id}/raw?se=2026&sp=w&sr=b&sig=SECRET"
        return _json(200, {"status": "success", "file_id": file_id, "upload_url": url})
    if host.endswith(".oaiusercontent.com") and method == "PUT" and route.startswith("/files/file-"):
        DECLARED.blobs[route.split("/")[2]] = len(body)
        for name in ("content-md5", "x-ms-blob-content-md5"):
            if name in headers and headers[name] != content_md5(body):
                return _json(400, {"error": "Md5Mismatch"})
        return 201, {"ETag": '"0x1"'}, b""
    found = re.fullmatch(r"/backend-api/files/([\w-]+)/uploaded", route)
    if host == "chatgpt.com" and found:
        file_id = found.group(1)
        if DECLARED.blobs.get(file_id) != DECLARED.sizes.get(file_id):
            return _json(400, {"detail": {"message": "file_size_mismatch"}})
        return _json(200, {"status": "success", "download_url": f"https://chatgpt.com/d/{file_id}"})
    if host == "api.openai.com" and route == "/v1/uploads":
        upload_id = DECLARED.next_id("upload_")
        declared = json.loads(body)
        DECLARED.sizes[upload_id] = declared["bytes"]
        DECLARED.parts[upload_id] = {}
        return _json(200, _openai_upload(upload_id, declared, "pending"))
    found = re.fullmatch(r"/v1/uploads/(\w+)/(parts|complete)", route)
    if host == "api.openai.com" and found:
        upload_id, step = found.groups()
        if step == "parts":
            part_id = DECLARED.next_id("part_")
            DECLARED.parts[upload_id][part_id] = multipart_field(body, headers["content-type"], "data")
            return _json(200, {"id": part_id, "object": "upload.part", "created_at": 0, "upload_id": upload_id})
        completion = json.loads(body)
        data = b"".join(DECLARED.parts[upload_id][part] for part in completion["part_ids"])
        if len(data) != DECLARED.sizes[upload_id]:
            return _json(400, {"error": {"message": f"parts hold {len(data)} bytes, declared {DECLARED.sizes[upload_id]}"}})
        if "md5" in completion and completion["md5"] != hashlib.md5(data).hexdigest():
            return _json(400, {"error": {"message": "the md5 does not match the uploaded parts"}})
        upload = _openai_upload(upload_id, {"bytes": len(data)}, "completed")
        return _json(200, upload | {"file": OPENAI_FILE | {"bytes": len(data)}})
    command = headers.get("x-goog-upload-command", "")
    if command == "start":
        upload_id = DECLARED.next_id("veil-")
        DECLARED.sizes[upload_id] = int(headers.get("x-goog-upload-header-content-length", -1))
        upload_url = f"https://{host}{route}?upload_id={upload_id}"
        return 200, {"X-Goog-Upload-URL": upload_url, "X-Goog-Upload-Status": "active"}, b"{}"
    if "finalize" in command:
        found = re.search(r"upload_id=([\w-]+)", query)
        received = int(headers.get("x-goog-upload-offset", 0)) + len(body)
        declared = DECLARED.sizes.get(found.group(1) if found else "", -1)
        if declared not in (-1, received):
            return _json(400, {"error": {"message": f"received {received} bytes, declared {declared}"}})
        return _json(200, _GEMINI_FILE, {"X-Goog-Upload-Status": "final"})
    if host == "chat.deepseek.com" and route.endswith("/file/upload_file"):
        data = multipart_field(body, headers["content-type"], "file") or b""
        if int(headers.get("x-file-size", -1)) != len(data):
            return _json(400, {"code": 40001, "msg": "x-file-size does not match the file"})
        return _json(200, {"code": 0, "data": {"biz_code": 0, "biz_data": {"id": "file-ds1"}}})
    if host == "chat.mistral.ai" and route == "/api/trpc/file.uploadFile":
        url = f"https://{MISTRAL_BLOB_HOST}/uploads/{DECLARED.next_id('img-')}.jpg?sv=2024-08-04&sp=cw&sig=SECRET"
        return _json(200, [{"result": {"data": {"json": {"uploadURLs": [url]}}}}])
    if host == MISTRAL_BLOB_HOST and method == "PUT":
        return 201, {"ETag": '"0x2"'}, b""
    if host == "ppl-ai-file-upload.s3.amazonaws.com" and method == "POST":
        return s3_presigned_post(headers, body)
    return None


def _s3_error(code: str, message: str) -> tuple[int, dict, bytes]:
    xml = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return 400, {"Content-Type": "application/xml"}, xml.encode()


def s3_presigned_post(headers: dict, body: bytes) -> tuple[int, dict, bytes]:
    """S3's checks of a browser-based POST: the signed `policy` form field (base64 JSON) lists
    conditions; `content-length-range` bounds the file's length and a `Content-Type` condition
    (exact, `eq` or `starts-with`) the form's Content-Type field. The signature itself is not
    checked (the test has no key); what matters is that Veil never changes the signed fields."""
    content_type = headers["content-type"]
    file = multipart_field(body, content_type, "file")
    encoded = multipart_field(body, content_type, "policy") or multipart_field(body, content_type, "Policy")
    if file is None or encoded is None:
        return _s3_error("InvalidArgument", "POST requires a file and a policy")
    conditions = json.loads(base64.b64decode(encoded, validate=True))["conditions"]
    form_type = (multipart_field(body, content_type, "Content-Type") or b"").decode()
    for condition in conditions:
        if isinstance(condition, list) and condition[0] == "content-length-range":
            low, high = int(condition[1]), int(condition[2])
            if len(file) < low:
                return _s3_error("EntityTooSmall", f"Your proposed upload is smaller than the minimum allowed size ({len(file)} < {low})")
            if len(file) > high:
                return _s3_error("EntityTooLarge", f"Your proposed upload exceeds the maximum allowed size ({len(file)} > {high})")
        elif isinstance(condition, dict) and "Content-Type" in condition:
            if form_type != condition["Content-Type"]:
                return _s3_error("AccessDenied", "Invalid according to Policy: Policy Condition failed: Content-Type")
        elif isinstance(condition, list) and len(condition) == 3 and condition[1] == "$Content-Type":
            operator, expected = condition[0], condition[2]
            if (operator == "eq" and form_type != expected) or (operator == "starts-with" and not form_type.startswith(expected)):
                return _s3_error("AccessDenied", "Invalid according to Policy: Policy Condition failed: Content-Type")
    return 204, {}, b""
