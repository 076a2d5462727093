"""A local stand-in for GitHub's artifact service (protocol v4), and tests that it speaks it.

``FakeResultsServer`` answers the Twirp JSON calls (CreateArtifact, FinalizeArtifact) and the
Azure Blob calls behind the signed URL (Put Block, Put Block List, Put Blob) as the real
services do: blocks are kept by id until a block list commits them, and FinalizeArtifact is
checked against the committed blob. Faults can be queued per kind of call: an HTTP status
(500, 429 with Retry-After), a dropped connection, a slow answer, an answer shorter than its
Content-Length, or an answer trickled one byte at a time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

SERVICE = "/twirp/github.actions.results.api.v1.ArtifactService/"
RUN_ID, JOB_ID = "7", "11"


def runtime_token(scope: str = f"Actions.Results:{RUN_ID}:{JOB_ID}") -> str:
    """A JWT shaped like the runner's ACTIONS_RUNTIME_TOKEN (the signature is not checked)."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'scp': scope, 'RunID': 7})}.c2lnbmF0dXJl"


@dataclass
class Fault:
    """What the server does instead of (or before) answering one request."""

    status: int = 0  # answer with this status
    retry_after: str | None = None
    drop: bool = False  # close the connection without an answer
    delay: float = 0.0  # answer normally, this many seconds late
    truncate: bool = False  # announce 100 bytes more than the body in Content-Length; send the body, close
    trickle: float = 0.0  # send the answer (status line, headers, body) one byte every this many seconds


@dataclass
class Artifact:
    name: str
    expires_at: str | None
    blocks: dict[str, bytes] = field(default_factory=dict)  # staged, by block id
    committed: bytes | None = None
    finalized: bool = False
    artifact_id: str = ""


class FakeResultsServer:
    """Threaded HTTP server on 127.0.0.1; use as a context manager."""

    def __init__(self, token: str | None = None, camel_case: bool = True) -> None:
        self.token = token or runtime_token()
        self.camel_case = camel_case  # act answers camelCase; protojson accepts both
        self.artifacts: dict[str, Artifact] = {}
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.calls: list[str] = []  # kind of every request received, faults included
        self.block_sizes: list[int] = []
        self.create_requests: list[dict] = []
        self.finalize_requests: list[dict] = []
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> FakeResultsServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def inject(self, kind: str, *faults: Fault) -> None:
        """Queue faults for the next requests of ``kind``: create, block, blocklist, blob, finalize."""
        self.faults[kind].extend(faults)

    def env(self) -> dict[str, str]:
        return {
            "ACTIONS_RUNTIME_TOKEN": self.token,
            "ACTIONS_RESULTS_URL": self.url + "/",
            "GITHUB_SERVER_URL": "https://github.example",
            "GITHUB_REPOSITORY": "org/repo",
            "GITHUB_RUN_ID": "4242",
        }

    # -- protocol ---------------------------------------------------------------------------
    def _twirp(self, method: str, body: dict, authorization: str) -> tuple[int, dict]:
        if authorization != f"Bearer {self.token}":
            return 401, {"code": "unauthenticated", "msg": "bad token"}
        get = lambda snake: body.get(snake, body.get(_camel(snake)))  # noqa: E731
        if (get("workflow_run_backend_id"), get("workflow_job_run_backend_id")) != (RUN_ID, JOB_ID):
            return 400, {"code": "invalid_argument", "msg": "unknown backend ids"}
        name = get("name")
        if method == "CreateArtifact":
            self.create_requests.append(body)
            if get("version") != 4:
                return 400, {"code": "invalid_argument", "msg": "version must be 4"}
            if name in self.artifacts and self.artifacts[name].finalized:
                return 409, {"code": "already_exists", "msg": f"an artifact named {name} exists"}
            self.artifacts[name] = Artifact(name, get("expires_at"))
            url = f"{self.url}/blob/{name}?sig=c2ln&se=2099-01-01T00%3A00%3A00Z&sv=2023-11-03"
            return 200, self._answer({"ok": True, "signed_upload_url": url})
        if method == "FinalizeArtifact":
            self.finalize_requests.append(body)
            artifact = self.artifacts.get(name)
            if artifact is None or artifact.committed is None:
                return 404, {"code": "not_found", "msg": "no upload was committed for this artifact"}
            data = artifact.committed
            if get("size") != str(len(data)) or get("hash") != "sha256:" + hashlib.sha256(data).hexdigest():
                return 400, {"code": "invalid_argument", "msg": "size or hash does not match the upload"}
            artifact.finalized = True
            artifact.artifact_id = str(1000 + len(self.finalize_requests))
            return 200, self._answer({"ok": True, "artifact_id": artifact.artifact_id})
        if method == "ListArtifacts":
            listed = [
                {"database_id": a.artifact_id, "name": a.name, "size": str(len(a.committed or b""))}
                for a in self.artifacts.values()
                if a.finalized and (get("name_filter") in (None, a.name))
            ]
            return 200, {"artifacts": [self._answer(item) for item in listed]}
        if method == "GetSignedArtifactURL":
            artifact = self.artifacts.get(name)
            if artifact is None or not artifact.finalized:
                return 404, {"code": "not_found", "msg": f"no artifact named {name}"}
            return 200, self._answer({"signed_url": f"{self.url}/blob/{name}?sig=c2ln&download=1"})
        return 404, {"code": "bad_route", "msg": method}

    def _blob(self, name: str, query: dict[str, list[str]], headers: dict[str, str], data: bytes) -> tuple[int, bytes]:
        artifact = self.artifacts.get(name)
        if artifact is None or query.get("sig") != ["c2ln"]:
            return 403, b"<Error><Code>AuthenticationFailed</Code></Error>"
        comp = query.get("comp", [""])[0]
        if query.get("download") == ["1"]:
            return (200, artifact.committed) if artifact.finalized and artifact.committed else (404, b"")
        if comp == "block":
            md5 = headers.get("content-md5")
            if md5 and md5 != base64.b64encode(hashlib.md5(data).digest()).decode():
                return 400, b"<Error><Code>Md5Mismatch</Code></Error>"
            artifact.blocks[query["blockid"][0]] = data
            self.block_sizes.append(len(data))
            return 201, b""
        if comp == "blocklist":
            ids = re.findall(r"<(?:Latest|Uncommitted|Committed)>([^<]*)</", data.decode())
            if any(block_id not in artifact.blocks for block_id in ids):
                return 400, b"<Error><Code>InvalidBlockList</Code></Error>"
            artifact.committed = b"".join(artifact.blocks[block_id] for block_id in ids)
            return 201, b""
        if comp == "":
            artifact.committed = data  # Put Blob: real Azure keeps it (act drops it)
            return 201, b""
        return 400, b"<Error><Code>InvalidQueryParameterValue</Code></Error>"

    def _answer(self, body: dict) -> dict:
        return {_camel(k): v for k, v in body.items()} if self.camel_case else body

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self._serve()

            def do_PUT(self) -> None:
                self._serve()

            def do_GET(self) -> None:
                self._serve()

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                if parts.path.startswith(SERVICE):
                    method = parts.path[len(SERVICE) :]
                    kind = {"CreateArtifact": "create", "FinalizeArtifact": "finalize"}.get(method, method)
                elif query.get("download"):
                    kind = "download"
                else:
                    kind = query.get("comp", ["blob"])[0]
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server._lock:
                    server.calls.append(kind)
                    fault = server.faults[kind].popleft() if server.faults[kind] else Fault()
                if fault.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.status:
                    body = json.dumps({"code": "unavailable", "msg": "injected fault"}).encode()
                    retry_after = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    self._send(fault.status, body, retry_after, fault)
                    return
                with server._lock:  # the answer is made under the lock and sent outside it
                    if parts.path.startswith(SERVICE):
                        status, answer = server._twirp(method, json.loads(data), self.headers.get("Authorization", ""))
                        body, headers = json.dumps(answer).encode(), {"Content-Type": "application/json"}
                    elif parts.path.startswith("/blob/"):
                        lowered = {k.lower(): v for k, v in self.headers.items()}
                        status, body = server._blob(parts.path[len("/blob/") :], query, lowered, data)
                        headers = {}
                    else:
                        status, body, headers = 404, b"", {}
                self._send(status, body, headers, fault)

            def _send(self, status: int, body: bytes, headers: dict[str, str], fault: Fault) -> None:
                head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                head += "".join(f"{key}: {value}\r\n" for key, value in headers.items())
                head += f"Content-Length: {len(body) + (100 if fault.truncate else 0)}\r\n\r\n"
                answer = head.encode() + body
                if fault.trickle:
                    for index in range(len(answer)):  # until the client gives up (the write then fails)
                        self.wfile.write(answer[index : index + 1])
                        time.sleep(fault.trickle)
                else:
                    self.wfile.write(answer)
                if fault.truncate:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)

        return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a dropped connection is a fault we injected, not a server bug


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


# -- the fake itself: it must refuse what the real services refuse ---------------------------


@pytest.fixture
def server():
    with FakeResultsServer() as fake:
        yield fake


def _create(server: FakeResultsServer, name: str = "a") -> str:
    body = {"workflow_run_backend_id": RUN_ID, "workflow_job_run_backend_id": JOB_ID, "name": name, "version": 4}
    answer = requests.post(
        server.url + SERVICE + "CreateArtifact", json=body, headers={"Authorization": f"Bearer {server.token}"}
    )
    assert answer.status_code == 200
    return answer.json()["signedUploadUrl"]


def test_fake_refuses_a_wrong_token(server: FakeResultsServer) -> None:
    answer = requests.post(server.url + SERVICE + "CreateArtifact", json={}, headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401


def test_fake_commits_blocks_in_block_list_order_not_arrival_order(server: FakeResultsServer) -> None:
    url = _create(server)
    requests.put(url + "&comp=block&blockid=Yg%3D%3D", data=b"second")
    requests.put(url + "&comp=block&blockid=YQ%3D%3D", data=b"first ")
    answer = requests.put(
        url + "&comp=blocklist", data=b"<BlockList><Latest>YQ==</Latest><Latest>Yg==</Latest></BlockList>"
    )
    assert answer.status_code == 201
    assert server.artifacts["a"].committed == b"first second"


def test_fake_refuses_to_finalize_an_artifact_with_nothing_committed(server: FakeResultsServer) -> None:
    url = _create(server)
    requests.put(url + "&comp=block&blockid=YQ%3D%3D", data=b"staged only")
    body = {
        "workflow_run_backend_id": RUN_ID,
        "workflow_job_run_backend_id": JOB_ID,
        "name": "a",
        "size": "11",
        "hash": "sha256:00",
    }
    answer = requests.post(
        server.url + SERVICE + "FinalizeArtifact", json=body, headers={"Authorization": f"Bearer {server.token}"}
    )
    assert answer.status_code == 404
    assert not server.artifacts["a"].finalized


def test_fake_refuses_a_block_whose_md5_does_not_match(server: FakeResultsServer) -> None:
    url = _create(server)
    answer = requests.put(
        url + "&comp=block&blockid=YQ%3D%3D", data=b"abc", headers={"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="}
    )
    assert answer.status_code == 400
    assert "Md5Mismatch" in answer.text
