"""The artifact upload client against a local server that speaks artifact protocol v4."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import time
import zipfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from converter.errors import UserError
from converter.github.artifacts import (
    BLOCK_SIZE,
    ArtifactClient,
    ArtifactError,
    RetryPolicy,
    RuntimeContext,
    backend_ids_from_token,
    expires_at,
    files_under,
    validate_artifact_name,
)
from tests.fixtures.artifact_server import JOB_ID, RUN_ID, FakeResultsServer, Fault, runtime_token

# Fast retries so that a test with faults takes well under a second of backoff.
FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, connect_timeout=2, read_timeout=0.5)


# Most tests use small blocks, so that three blocks are quick to make; one test uses the real size.
SMALL_BLOCK = 1024 * 1024


def model_files(directory: Path, onnx_bytes: int) -> list[Path]:
    """An .onnx of random bytes (they do not compress) and the two reports."""
    onnx = directory / "model.onnx"
    onnx.write_bytes(os.urandom(onnx_bytes))
    (directory / "model.report.json").write_text('{"passed": true}\n')
    (directory / "model.report.md").write_text("## ✅ model\n")
    return [onnx, directory / "model.report.json", directory / "model.report.md"]


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    return model_files(tmp_path, int(2.5 * SMALL_BLOCK))  # three blocks of SMALL_BLOCK


def client_for(
    server: FakeResultsServer, retry: RetryPolicy = FAST, log: list[str] | None = None, block_size: int = SMALL_BLOCK
) -> ArtifactClient:
    context = RuntimeContext.from_env(server.env())
    assert context is not None
    return ArtifactClient(
        context, retry=retry, block_size=block_size, log=(log.append if log is not None else lambda _m: None)
    )


def committed_zip(server: FakeResultsServer, name: str) -> zipfile.ZipFile:
    data = server.artifacts[name].committed
    assert data is not None
    return zipfile.ZipFile(io.BytesIO(data))


def test_upload_sends_blocks_of_at_most_8_mib_and_finalizes_with_size_and_sha256(server, tmp_path) -> None:
    files = model_files(tmp_path, 20 * 1024 * 1024)

    uploaded = client_for(server, block_size=BLOCK_SIZE).upload("model-onnx", files)

    artifact = server.artifacts["model-onnx"]
    assert server.calls == ["create", "block", "block", "block", "blocklist", "finalize"]
    assert max(server.block_sizes) == BLOCK_SIZE
    assert sum(server.block_sizes) == len(artifact.committed) == uploaded.size
    assert artifact.finalized
    assert server.finalize_requests[0]["hash"] == "sha256:" + hashlib.sha256(artifact.committed).hexdigest()
    assert server.finalize_requests[0]["size"] == str(uploaded.size)
    assert uploaded.sha256 == hashlib.sha256(artifact.committed).hexdigest()
    assert uploaded.id == artifact.artifact_id
    assert uploaded.url == f"https://github.example/org/repo/actions/runs/4242/artifacts/{uploaded.id}"
    archive = committed_zip(server, "model-onnx")
    assert archive.namelist() == ["model.onnx", "model.report.json", "model.report.md"]
    assert archive.read("model.onnx") == files[0].read_bytes()


def test_requests_use_snake_case_fields_and_the_backend_ids_of_the_token(server, files) -> None:
    client_for(server).upload("model-onnx", files)

    assert server.create_requests == [
        {"workflow_run_backend_id": RUN_ID, "workflow_job_run_backend_id": JOB_ID, "name": "model-onnx", "version": 4}
    ]
    assert set(server.finalize_requests[0]) == {
        "workflow_run_backend_id",
        "workflow_job_run_backend_id",
        "name",
        "size",
        "hash",
    }


def test_snake_case_answers_are_accepted_too(files) -> None:
    with FakeResultsServer(camel_case=False) as server:
        uploaded = client_for(server).upload("model-onnx", files)
    assert uploaded.id == server.artifacts["model-onnx"].artifact_id


def test_500s_429s_a_dropped_connection_and_a_slow_answer_are_retried_and_the_upload_succeeds(server, files) -> None:
    server.inject("create", Fault(status=500), Fault(status=503))
    server.inject("block", Fault(status=429, retry_after="0"), Fault(drop=True), Fault(delay=1.5))
    server.inject("blocklist", Fault(status=502))
    server.inject("finalize", Fault(drop=True), Fault(status=500))
    log: list[str] = []

    uploaded = client_for(server, log=log).upload("model-onnx", files)

    assert server.calls.count("create") == 3
    assert server.calls.count("block") == 3 + 3  # three blocks, three faults
    assert server.calls.count("blocklist") == 2
    assert server.calls.count("finalize") == 3
    assert server.artifacts["model-onnx"].finalized
    assert committed_zip(server, "model-onnx").read("model.onnx") == files[0].read_bytes()
    assert uploaded.sha256 == hashlib.sha256(server.artifacts["model-onnx"].committed).hexdigest()
    retries = [line for line in log if "retry" in line]
    assert len(retries) == 8
    assert retries[0].startswith("CreateArtifact: HTTP 500 (unavailable: injected fault); retry 1 of 3 in ")
    assert any(line.startswith("Put Block 1 of 3: HTTP 429") for line in retries)
    assert any("ConnectionError" in line for line in retries)
    assert any("ReadTimeout" in line or "Timeout" in line for line in retries)


def test_a_block_that_keeps_failing_fails_clearly_after_the_budget_and_is_never_finalized(server, files) -> None:
    server.inject("block", Fault(), *[Fault(status=503)] * 10)  # block 1 passes, block 2 never does

    with pytest.raises(ArtifactError) as failure:
        client_for(server).upload("model-onnx", files)

    assert failure.value.one_line() == (
        f"Put Block 2 of 3 to {server.url}/blob/model-onnx failed after 4 attempts: HTTP 503 (unavailable: injected fault); "
        "the artifact was not finalized; re-run the job, or set upload-artifact: false"
    )
    assert "sig=" not in failure.value.one_line()
    assert server.calls == ["create", "block", "block", "block", "block", "block"]
    assert server.finalize_requests == []
    assert server.artifacts["model-onnx"].committed is None


def test_dropped_connections_until_the_budget_is_spent_fail_without_finalizing(server, files) -> None:
    server.inject("blocklist", *[Fault(drop=True)] * 4)

    with pytest.raises(ArtifactError, match=r"^Put Block List to .* failed after 4 attempts: ConnectionError"):
        client_for(server).upload("model-onnx", files)

    assert "finalize" not in server.calls
    assert not server.artifacts["model-onnx"].finalized


def test_a_refusal_that_retrying_cannot_fix_fails_at_once(server, files) -> None:
    server.inject("create", Fault(status=409))

    with pytest.raises(ArtifactError, match=r"^CreateArtifact to .* failed: HTTP 409 \(unavailable: injected fault\)$"):
        client_for(server).upload("model-onnx", files)

    assert server.calls == ["create"]


def test_a_second_artifact_with_the_same_name_is_refused_by_the_service(server, files) -> None:
    client_for(server).upload("model-onnx", files)

    with pytest.raises(ArtifactError, match=r"HTTP 409 \(already_exists: an artifact named model-onnx exists\)"):
        client_for(server).upload("model-onnx", files)


def test_retention_days_become_expires_at() -> None:
    now = datetime(2026, 1, 30, 12, 0, 0, tzinfo=UTC)
    assert expires_at(3, now) == "2026-02-02T12:00:00Z"


def test_upload_with_retention_sends_expires_at_and_without_it_sends_none(server, files) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    client_for(server).upload("kept-5-days", files, retention_days=5)
    client_for(server).upload("kept-by-repository-setting", files)

    sent = datetime.strptime(server.create_requests[0]["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before + timedelta(days=5) <= sent <= datetime.now(UTC) + timedelta(days=5)
    assert "expires_at" not in server.create_requests[1]


@pytest.mark.parametrize("bad", ['a"b', "a:b", "a<b", "a>b", "a|b", "a*b", "a?b", "a\rb", "a\nb", "a\\b", "a/b", " "])
def test_artifact_names_github_refuses_are_refused_before_any_request(server, files, bad: str) -> None:
    with pytest.raises(UserError, match=r"^--artifact-name "):
        client_for(server).upload(bad, files)
    assert server.calls == []


def test_a_plain_name_is_valid() -> None:
    assert validate_artifact_name("iris_model-onnx.v2") == "iris_model-onnx.v2"


def test_backend_ids_come_from_the_scp_claim() -> None:
    token = runtime_token("Actions.GenericRead:1 Actions.Results:123:456 Actions.UploadArtifacts:1")
    assert backend_ids_from_token(token) == ("123", "456")


def test_a_token_without_results_scope_is_a_clear_error() -> None:
    with pytest.raises(ArtifactError, match=r"has no Actions\.Results scope"):
        backend_ids_from_token(runtime_token("Actions.GenericRead:1"))
    with pytest.raises(ArtifactError, match="is not a JWT"):
        backend_ids_from_token("not-a-jwt")


def test_outside_actions_there_is_no_runtime_context() -> None:
    assert RuntimeContext.from_env({}) is None
    assert RuntimeContext.from_env({"ACTIONS_RESULTS_URL": "http://127.0.0.1:1/"}) is None


def test_the_results_service_is_addressed_at_the_origin_of_the_results_url() -> None:
    context = RuntimeContext.from_env(
        {"ACTIONS_RUNTIME_TOKEN": runtime_token(), "ACTIONS_RESULTS_URL": "https://results.example:8443/some/path/"}
    )
    assert context is not None
    assert context.results_url == "https://results.example:8443"
    assert (context.run_backend_id, context.job_backend_id) == (RUN_ID, JOB_ID)
    assert context.max_retention_days is None  # act's GITHUB_RETENTION_DAYS=0 and no value both mean unknown


def test_an_answer_shorter_than_its_content_length_is_retried_like_a_dropped_connection(server, files) -> None:
    server.inject("create", Fault(truncate=True))
    server.inject("block", Fault(truncate=True))
    server.inject("finalize", Fault(truncate=True))
    log: list[str] = []

    uploaded = client_for(server, log=log).upload("model-onnx", files)

    assert server.artifacts["model-onnx"].finalized and uploaded.id == server.artifacts["model-onnx"].artifact_id
    retries = [line for line in log if "retry" in line]
    assert [line.split(":")[0] for line in retries] == ["CreateArtifact", "Put Block 1 of 3", "FinalizeArtifact"]
    assert all("ChunkedEncodingError" in line for line in retries), retries


# The per-read timeout (0.5 s) never fires against a server that sends a byte every 0.2 s.
TRICKLE = 0.2
DEADLINES = RetryPolicy(attempts=10, base_delay=0.01, max_delay=0.05, read_timeout=0.5, request_deadline=1.0)


def test_a_server_that_trickles_its_answer_is_cut_at_the_call_deadline_and_retried(server, files) -> None:
    server.inject("create", Fault(trickle=TRICKLE))
    server.inject("block", Fault(trickle=TRICKLE))
    log: list[str] = []
    start = time.monotonic()

    uploaded = client_for(server, retry=DEADLINES, log=log).upload("model-onnx", files)

    assert time.monotonic() - start < 6  # two cut calls of 1 s; trickled, the two answers take 70 s
    assert uploaded.id == server.artifacts["model-onnx"].artifact_id
    retries = [line for line in log if "retry" in line]
    assert [line.split(";")[0] for line in retries] == [
        "CreateArtifact: Timeout: no complete answer within 1 s",
        "Put Block 1 of 3: Timeout: no complete answer within 1 s",
    ]


def test_a_server_that_always_trickles_fails_the_upload_within_its_bound(server, files) -> None:
    server.inject("create", *[Fault(trickle=TRICKLE)] * 20)
    retry = replace(DEADLINES, upload_deadline=2.5)
    start = time.monotonic()

    with pytest.raises(ArtifactError) as failure:
        client_for(server, retry=retry).upload("model-onnx", files)

    assert time.monotonic() - start < 4
    assert re.fullmatch(
        f"CreateArtifact to {server.url}/twirp/github.actions.results.api.v1.ArtifactService/CreateArtifact failed: "
        r"the upload took longer than 2.5 s \(last attempt: Timeout: no complete answer within [0-9.]+ s\); "
        "the artifact was not finalized; re-run the job, or set upload-artifact: false",
        failure.value.one_line(),
    ), failure.value.one_line()
    assert "finalize" not in server.calls


def test_links_are_listed_apart_and_never_zipped(server, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "m.onnx").write_bytes(b"onnx")
    (tmp_path / "secret").write_text("token")
    (folder / "secret").symlink_to(tmp_path / "secret")
    (folder / "home").symlink_to(tmp_path)

    files, links = files_under(folder)

    assert files == [folder / "model" / "m.onnx"]
    assert links == [folder / "home", folder / "secret"]
    with pytest.raises(ArtifactError, match=f"^{folder}/secret is not a regular file, so it is not uploaded$"):
        client_for(server).upload("out", [*files, folder / "secret"], root=folder)
    with pytest.raises(ArtifactError, match=f"^{tmp_path}/secret is outside {folder}, so it is not uploaded$"):
        client_for(server).upload("out", [tmp_path / "secret"], root=folder)
    assert server.calls == []


def test_a_retried_call_logs_no_signed_url(server, files, caplog: pytest.LogCaptureFixture) -> None:
    # urllib3 warns "Retrying ... after connection broken by ...: /blob/model-onnx?sig=..." on every
    # retry; a root handler (a framework may install one) would print the signature.
    server.inject("block", Fault(drop=True))
    log: list[str] = []

    with caplog.at_level(logging.WARNING):
        client_for(server, log=log).upload("model-onnx", files)

    assert [record.getMessage() for record in caplog.records] == []
    assert [line.split(";")[0] for line in log if "retry" in line] == [
        "Put Block 1 of 3: ConnectionError: ('Connection aborted.', "
        "RemoteDisconnected('Remote end closed connection without response'))"
    ]


def test_retry_after_sets_the_pause_up_to_the_longest_one(server, files) -> None:
    server.inject("create", Fault(status=503, retry_after="1"), Fault(status=429, retry_after="600"))
    log: list[str] = []

    client_for(server, retry=replace(FAST, max_delay=1.5), log=log).upload("model-onnx", files)

    assert [line.split("; ")[1] for line in log if "retry" in line] == [
        "retry 1 of 3 in 1.0 s",
        "retry 2 of 3 in 1.5 s",
    ]
