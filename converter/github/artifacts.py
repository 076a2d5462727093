"""Workflow artifact upload from inside the action's container: artifact protocol v4.

This is what actions/upload-artifact@v4 does (``@actions/artifact`` in actions/toolkit), in Python:

1. ``CreateArtifact``, a Twirp JSON call to the results service, returns a signed upload URL;
2. the zip goes to that URL as Azure Blob ``Put Block`` calls of at most 8 MiB, then ``Put Block
   List`` (act's artifact server silently drops a single ``Put Blob``; GitHub's uploader uses
   blocks too);
3. ``FinalizeArtifact`` with the zip's size and sha256 returns the artifact id.

Every call is retried with backoff on 429, 5xx, timeouts, dropped connections and bodies cut
short: urllib3's Retry on the session's adapter (``retry.py``). Each attempt ends within a
deadline however slowly the server answers (``deadline.py``), and the whole upload within
another. A failed block or block list is never followed by ``FinalizeArtifact``: a partial zip
is never published. Only regular files are zipped: a symbolic link is never followed, and nothing
outside the folder being uploaded is zipped.

Why plain ``requests`` and not azure-storage-blob: the SDK keeps only the query parameters it
knows as Azure SAS fields and drops the others, and act's signed URLs carry their signature in
``expires``, ``artifactName`` and ``taskID``: act answers every block with 401 Unauthorized.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from urllib3.exceptions import MaxRetryError

from converter.errors import ConverterError, UserError, shorten
from converter.github.deadline import DeadlineAdapter
from converter.github.downloads import extract_reports
from converter.github.retry import (
    RETRY_STATUSES,
    Call,
    CallRetry,
    UploadTooSlow,
    describe_error,
    error_detail,
    quiet_urllib3_retry_warnings,
)
from converter.github.zipped import write_zip

BLOCK_SIZE = 8 * 1024 * 1024  # the toolkit's block size; Azure allows up to 4000 MiB
SERVICE_PATH = "/twirp/github.actions.results.api.v1.ArtifactService/"
AZURE_API_VERSION = "2023-11-03"
# The characters actions/toolkit refuses in artifact names (they break paths or the zip name).
INVALID_NAME_CHARACTERS = ('"', ":", "<", ">", "|", "*", "?", "\r", "\n", "\\", "/")


@dataclass(frozen=True)
class ListedArtifact:
    id: str
    name: str
    size: int


class ArtifactError(ConverterError):
    """The upload failed (the conversion itself may have passed): exit 1."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one HTTP call is tried (``attempts`` in all, urllib3's backoff with jitter between
    them: retry.py), and how long a call and the whole upload may take."""

    attempts: int = 5
    base_delay: float = 1.0  # backoff factor: retries after 0, 2, 4, 8... times it, plus up to it
    max_delay: float = 30.0  # the longest pause, Retry-After included
    connect_timeout: float = 10.0
    read_timeout: float = 120.0  # the longest silence between two reads
    request_deadline: float = 300.0  # one attempt, whole: a block of 8 MiB at 28 KiB/s
    upload_deadline: float = 3600.0  # every call and pause of one upload


@dataclass(frozen=True)
class RuntimeContext:
    """What the runner gives a step for artifacts (ACTIONS_RUNTIME_TOKEN and friends)."""

    results_url: str  # origin of ACTIONS_RESULTS_URL
    token: str
    run_backend_id: str
    job_backend_id: str
    server_url: str  # no defaults: from_env, the only constructor, reads each (and defaults it)
    repository: str
    run_id: str
    max_retention_days: int | None  # the repository's limit (GITHUB_RETENTION_DAYS)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RuntimeContext | None:
        """The context of this step, or None outside Actions (no token or results URL)."""
        token = env.get("ACTIONS_RUNTIME_TOKEN", "")
        results_url = env.get("ACTIONS_RESULTS_URL", "")
        if not token or not results_url:
            return None
        run_id, job_id = backend_ids_from_token(token)
        parts = urlsplit(results_url)
        retention = env.get("GITHUB_RETENTION_DAYS", "")
        return cls(
            results_url=f"{parts.scheme}://{parts.netloc}",
            token=token,
            run_backend_id=run_id,
            job_backend_id=job_id,
            server_url=env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/"),
            repository=env.get("GITHUB_REPOSITORY", ""),
            run_id=env.get("GITHUB_RUN_ID", ""),
            # act sets 0: that is "unknown", not "keep nothing"
            max_retention_days=int(retention) if retention.isdigit() and int(retention) > 0 else None,
        )

    def retention(self, requested: int | None) -> tuple[int | None, str]:
        """The retention to ask for, and a warning when the repository's limit cut it.

        As ``@actions/artifact`` does (``getExpiration``): more days than the repository keeps
        are cut to its limit before ``CreateArtifact``.
        """
        if requested and self.max_retention_days and requested > self.max_retention_days:
            return self.max_retention_days, (
                f"retention-days {requested} is over the repository's limit; "
                f"keeping the artifact {self.max_retention_days} days"
            )
        return requested, ""

    def artifact_url(self, artifact_id: str) -> str:
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}/artifacts/{artifact_id}"


@dataclass(frozen=True)
class UploadedArtifact:
    id: str
    name: str
    url: str
    size: int  # bytes of the zip
    sha256: str  # hex digest of the zip
    files: tuple[str, ...]  # names inside the zip


def backend_ids_from_token(token: str) -> tuple[str, str]:
    """(workflow run backend id, job run backend id) from the ``scp`` claim of the runtime JWT.

    The claim holds space-separated scopes; the one we need is ``Actions.Results:<run>:<job>``.
    """
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        scopes = str(claims.get("scp", "")).split()
    except (IndexError, ValueError, binascii.Error, AttributeError):
        raise ArtifactError(
            "ACTIONS_RUNTIME_TOKEN is not a JWT", "the runner gives it; do not set it yourself"
        ) from None
    for scope in scopes:
        parts = scope.split(":")
        if len(parts) == 3 and parts[0] == "Actions.Results" and parts[1] and parts[2]:
            return parts[1], parts[2]
    raise ArtifactError(
        "ACTIONS_RUNTIME_TOKEN has no Actions.Results scope, so the artifact service cannot be addressed",
        "this runner does not support artifact protocol v4; set upload-artifact: false",
    )


def validate_artifact_name(name: str) -> str:
    """The name, or a UserError naming the character that GitHub would refuse."""
    if not name.strip():
        raise UserError('--artifact-name "": the name is empty', "give a name such as model-onnx")
    for char in INVALID_NAME_CHARACTERS:
        if char in name:
            shown = {"\r": "\\r", "\n": "\\n"}.get(char, char)
            raise UserError(
                f'--artifact-name "{name.encode("unicode_escape").decode()}": contains {shown}',
                'artifact names cannot contain " : < > | * ? \\r \\n \\ or /',
            )
    return name


def expires_at(retention_days: int, now: datetime | None = None) -> str:
    """The protobuf Timestamp (RFC 3339, UTC) ``retention_days`` after ``now``."""
    moment = (now or datetime.now(UTC)) + timedelta(days=retention_days)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ArtifactClient:
    """Uploads one zip per artifact to the results service of ``context``."""

    def __init__(
        self,
        context: RuntimeContext,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        block_size: int = BLOCK_SIZE,
        log: Callable[[str], None] = lambda _msg: None,
    ) -> None:
        self.context = context
        self.retry = retry or RetryPolicy()
        self.session = session or requests.Session()
        # As twine mounts its retries (twine/utils.py make_requests_session); _send sets the Retry per call.
        self.adapter = DeadlineAdapter(self.retry.request_deadline)
        self.session.mount("http://", self.adapter)
        self.session.mount("https://", self.adapter)
        quiet_urllib3_retry_warnings()
        self.block_size = block_size
        self.log = log

    def upload(
        self, name: str, files: Sequence[Path], retention_days: int | None = None, root: Path | None = None
    ) -> UploadedArtifact:
        """Zip ``files`` and upload them as artifact ``name``.

        Files are stored under their names, or under their paths below ``root`` when given
        (a many-model run keeps each model's folder).
        """
        from converter.onnx_file import sha256_of  # imports onnx: only when there is something to upload

        validate_artifact_name(name)
        with tempfile.TemporaryDirectory(prefix="onnx-convert-artifact-") as tmp:
            archive = Path(tmp) / "artifact.zip"  # not the name: it may be as long as GitHub allows
            members = _write_zip(archive, files, root)
            size = archive.stat().st_size
            digest = sha256_of(archive)
            self.adapter.ends = time.monotonic() + self.retry.upload_deadline
            try:
                artifact_id, blocks = self._publish(name, archive, digest, retention_days)
            finally:
                self.adapter.ends = math.inf
        self.log(f"uploaded artifact {name} ({size:,} bytes, {blocks} blocks), id {artifact_id}")
        return UploadedArtifact(
            id=artifact_id,
            name=name,
            url=self.context.artifact_url(artifact_id),
            size=size,
            sha256=digest,
            files=tuple(members),
        )

    def _publish(self, name: str, archive: Path, digest: str, retention_days: int | None) -> tuple[str, int]:
        """CreateArtifact, the blocks, the block list, FinalizeArtifact: (artifact id, blocks sent)."""
        create: dict[str, Any] = {**self._ids(), "name": name, "version": 4}
        if retention_days is not None:
            create["expires_at"] = expires_at(retention_days)
        answer = self._twirp("CreateArtifact", create)
        upload_url = _field(answer, "signed_upload_url")
        if not answer.get("ok") or not upload_url:
            raise ArtifactError(f'CreateArtifact for "{name}" was refused: {shorten(json.dumps(answer), 200)}')
        blocks = self._put_blocks(str(upload_url), archive)
        self._put_block_list(str(upload_url), blocks)
        size = str(archive.stat().st_size)
        answer = self._twirp(
            "FinalizeArtifact", {**self._ids(), "name": name, "size": size, "hash": f"sha256:{digest}"}
        )
        artifact_id = _field(answer, "artifact_id")
        if not answer.get("ok") or artifact_id in (None, ""):
            raise ArtifactError(f'FinalizeArtifact for "{name}" was refused: {shorten(json.dumps(answer), 200)}')
        return str(artifact_id), len(blocks)

    def list_artifacts(self) -> list[ListedArtifact]:
        """Every artifact of this workflow run (``ListArtifacts``), from all its jobs."""
        answer = self._twirp("ListArtifacts", self._ids())
        return [
            ListedArtifact(
                id=str(_field(item, "database_id")), name=str(item.get("name", "")), size=int(item.get("size") or 0)
            )
            for item in answer.get("artifacts") or []
        ]

    def download_reports(self, name: str, destination: Path) -> list[Path]:
        """The ``*.report.json`` files of artifact ``name``, written under ``destination/name/``.

        The zip is fetched from ``GetSignedArtifactURL``'s signed URL (no token: the URL is the
        credential); the reports are taken out of it within bounds, by their base names
        (``downloads.py``: another job made the zip).
        """
        answer = self._twirp("GetSignedArtifactURL", {**self._ids(), "name": validate_artifact_name(name)})
        signed_url = _field(answer, "signed_url")
        if not signed_url:
            raise ArtifactError(f'GetSignedArtifactURL for "{name}" gave no URL: {shorten(json.dumps(answer), 200)}')
        response = self._send(f"download {name}", "GET", str(signed_url), data=None, headers={})
        return extract_reports(response.content, name, destination / name)

    # -- the three kinds of call -------------------------------------------------------------
    def _ids(self) -> dict[str, str]:
        return {
            "workflow_run_backend_id": self.context.run_backend_id,
            "workflow_job_run_backend_id": self.context.job_backend_id,
        }

    def _twirp(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._send(
            method,
            "POST",
            self.context.results_url + SERVICE_PATH + method,
            data=json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.context.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            answer = response.json()
        except ValueError:
            raise ArtifactError(f"{method} answered HTTP {response.status_code} with a body that is not JSON") from None
        if not isinstance(answer, dict):
            raise ArtifactError(f"{method} answered with JSON that is not an object")
        return answer

    def _put_blocks(self, upload_url: str, archive: Path) -> list[str]:
        total = max(1, -(-archive.stat().st_size // self.block_size))
        block_ids = []
        with archive.open("rb") as source:
            for index in range(total):
                chunk = source.read(self.block_size)
                # Azure wants every block id of a blob to have the same length before base64.
                block_id = base64.b64encode(f"onnx-convert-{index:08d}".encode()).decode()
                self._send(
                    f"Put Block {index + 1} of {total}",
                    "PUT",
                    f"{upload_url}&comp=block&blockid={quote(block_id, safe='')}",
                    data=chunk,
                    headers={
                        "x-ms-version": AZURE_API_VERSION,
                        "Content-Type": "application/octet-stream",
                        # Azure checks it and refuses a block damaged on the way.
                        "Content-MD5": base64.b64encode(hashlib.md5(chunk).digest()).decode(),
                    },
                )
                block_ids.append(block_id)
        return block_ids

    def _put_block_list(self, upload_url: str, block_ids: list[str]) -> None:
        body = '<?xml version="1.0" encoding="utf-8"?><BlockList>'
        body += "".join(f"<Latest>{block_id}</Latest>" for block_id in block_ids) + "</BlockList>"
        self._send(
            "Put Block List",
            "PUT",
            f"{upload_url}&comp=blocklist",
            data=body.encode(),
            headers={
                "x-ms-version": AZURE_API_VERSION,
                "Content-Type": "application/xml",
                "x-ms-blob-content-type": "application/zip",
            },
        )

    def _send(self, what: str, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> requests.Response:
        """One call, retried by the adapter's Retry; a 2xx response, or ArtifactError after the retry budget."""
        call = self._call(what, url)
        self.adapter.max_retries = CallRetry.for_call(call, self.retry.base_delay)
        try:
            response = self.session.request(
                method, url, data=data, headers=headers, timeout=(self.retry.connect_timeout, self.retry.read_timeout)
            )
        except UploadTooSlow as exc:
            raise ArtifactError(f"{what} to {call.where} failed: {exc}", _HINT) from None
        except requests.RequestException as exc:
            spent = bool(exc.args) and isinstance(exc.args[0], MaxRetryError)  # else it was not retried
            raise ArtifactError(
                f"{what} to {call.where} failed{self._after(spent)}: {describe_error(exc)}", _HINT
            ) from None
        if 200 <= response.status_code < 300:
            return response
        detail = error_detail(response.text[:2000] if response.content else "")
        spent = response.status_code in RETRY_STATUSES
        raise ArtifactError(
            f"{what} to {call.where} failed{self._after(spent)}: HTTP {response.status_code}{detail}", _HINT
        )

    def _call(self, what: str, url: str) -> Call:
        """The next call, or ArtifactError when the upload has no time left for it."""
        if self.adapter.ends <= time.monotonic():
            raise ArtifactError(
                f"{what} to {_where(url)} failed: the upload took longer than {self.retry.upload_deadline:g} s", _HINT
            )
        return Call(
            what=what,
            where=_where(url),
            log=self.log,
            retries=self.retry.attempts - 1,
            max_delay=self.retry.max_delay,
            ends=self.adapter.ends,
            upload_deadline=self.retry.upload_deadline,
        )

    def _after(self, spent: bool) -> str:
        return f" after {self.retry.attempts} attempts" if spent else ""


_HINT = "the artifact was not finalized; re-run the job, or set upload-artifact: false"


def _field(answer: Mapping[str, Any], snake: str) -> Any:
    """A response field: Twirp JSON may use snake_case or camelCase (act answers camelCase)."""
    head, *rest = snake.split("_")
    return answer.get(snake, answer.get(head + "".join(part.title() for part in rest)))


def files_under(root: Path) -> tuple[list[Path], list[Path]]:
    """The regular files below ``root``, and the symbolic links there, which are never followed.

    The output folder is in the repository, so a pull request can put a link in it to a file or
    folder of the runner's: a link is not uploaded, wherever it points.
    """
    files, links = [], []
    for folder, subfolders, names in os.walk(root):  # a linked folder is listed, never entered
        for name in subfolders + names:
            path = Path(folder) / name
            if path.is_symlink():
                links.append(path)
            elif name in names and path.is_file():
                files.append(path)
    return sorted(files), sorted(links)


def _write_zip(archive: Path, files: Sequence[Path], root: Path | None = None) -> list[str]:
    members: dict[str, Path] = {}
    for path in files:
        members.setdefault(_member_name(path, root), path)
    if not members:
        raise ArtifactError("nothing to upload: the conversion wrote no files")
    return write_zip(archive, members)  # the same files give the same bytes (zipped.py)


def _member_name(path: Path, root: Path | None) -> str:
    """``path``'s name in the zip: below ``root`` when given. A link, or anything outside ``root``,
    is refused rather than followed (callers list files with ``files_under``)."""
    if path.is_symlink() or not path.is_file():
        raise ArtifactError(f"{path} is not a regular file, so it is not uploaded")
    if root is None:
        return path.name
    resolved, base = path.resolve(), root.resolve()
    if not resolved.is_relative_to(base):
        raise ArtifactError(f"{path} is outside {root}, so it is not uploaded")
    return resolved.relative_to(base).as_posix()


def _where(url: str) -> str:
    """Scheme, host and path only: the query of a signed URL is a credential."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
