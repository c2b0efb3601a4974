"""Streaming multipart uploads for the HTTP service: every file part goes straight to a temporary
file while its size is counted and its first bytes are sniffed; errors become ServiceProblem."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from adv.audio_io import sniff_format
from adv.errors import AudioError, EmptyAudioError, NotAudioError, TooLongError

if TYPE_CHECKING:
    from adv.service.settings import ServiceSettings

logger = logging.getLogger("adv.service")

MULTIPART_OVERHEAD = 64 * 1024  # allowance per file for boundaries, part headers, small form fields
SNIFF_BYTES = 64  # as many as adv.audio_io.load_audio looks at
_SUFFIX = {
    "wav": ".wav",
    "aiff": ".aiff",
    "flac": ".flac",
    "ogg": ".ogg",
    "mp3": ".mp3",
    "aac": ".aac",
    "webm": ".webm",
    "mp4": ".m4a",
}


class ServiceProblem(Exception):
    """An error answer: status code and the JSON error body."""

    def __init__(self, status_code: int, error: str, detail: str, filename: str | None = None):
        super().__init__(detail)
        self.status_code, self.error, self.detail, self.filename = status_code, error, detail, filename
        self.close_connection = False  # set when answering before the request body was read

    def body(self) -> dict:
        return {"error": self.error, "detail": self.detail, "filename": self.filename}

    def entry(self) -> dict:
        return {**self.body(), "status_code": self.status_code}


def clean_filename(raw: bytes | None) -> str | None:
    """The client's file name, for messages only: last path component, no control characters."""
    if not raw:
        return None
    name = raw.decode("utf-8", errors="replace").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] or None


def audio_problem(exc: AudioError, filename: str, tmp_path: str | None) -> ServiceProblem:
    """Maps a decoder/validator error to 415 (not audio), 413 (audio too long) or 422, naming the
    client's file."""
    msg = str(exc)
    if tmp_path:
        msg = msg.replace(tmp_path, filename).replace(os.path.basename(tmp_path), filename)
    status = 415 if isinstance(exc, NotAudioError) else 413 if isinstance(exc, TooLongError) else 422
    return ServiceProblem(status, type(exc).__name__, msg, filename)


# --------------------------------------------------------------------------- streaming upload parser
@dataclass
class UploadedFile:
    filename: str
    size: int = 0
    head: bytearray = field(default_factory=bytearray)
    fh: BinaryIO | None = None
    path: str | None = None
    fmt: str | None = None
    problem: ServiceProblem | None = None


class UploadReceiver:
    """Feeds a multipart body through python-multipart's push parser, writing every part named
    by one of ``file_fields`` (the endpoint's field, then its aliases) straight to its own
    temporary file.

    Per-file problems (too large, not audio, empty) are recorded on the file; with ``strict`` they
    are raised at once so the request is answered without reading the rest of the body.
    """

    def __init__(
        self,
        boundary: bytes,
        *,
        file_fields: tuple[str, ...],
        max_files: int,
        max_file_bytes: int,
        tmp_dir: str | None,
        strict: bool,
    ):
        self.file_fields, self.max_files, self.max_file_bytes = file_fields, max_files, max_file_bytes
        self.tmp_dir, self.strict = tmp_dir, strict
        self.files: list[UploadedFile] = []
        self.other_fields: list[str] = []
        self.finished = False
        self._paths: list[str] = []
        self._cur: UploadedFile | None = None
        self._hname = bytearray()
        self._hval = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
        )

    # -- parser callbacks
    def _on_part_begin(self) -> None:
        self._cur = None
        self._headers = {}
        self._hname.clear()
        self._hval.clear()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._hval += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[bytes(self._hname).strip().lower()] = bytes(self._hval).strip()
        self._hname.clear()
        self._hval.clear()

    def _on_headers_finished(self) -> None:
        _, opts = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = opts.get(b"name", b"").decode("utf-8", errors="replace")
        if name not in self.file_fields:
            self.other_fields.append(name)
            return  # data of other form fields is discarded
        if len(self.files) >= self.max_files:
            if self.max_files == 1:
                detail = "send one file per request to /analyze (use /analyze/batch for several)"
            else:
                detail = f"too many files: at most {self.max_files} per batch request"
            raise ServiceProblem(400, "TooManyFiles", detail)
        f = UploadedFile(filename=clean_filename(opts.get(b"filename")) or f"upload-{len(self.files) + 1}")
        self.files.append(f)
        self._cur = f

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        f = self._cur
        if f is None or f.problem is not None:
            return
        f.size += end - start
        if f.size > self.max_file_bytes:
            mb = self.max_file_bytes / 1e6
            self._fail(
                f,
                ServiceProblem(413, "FileTooLarge", f"{f.filename}: upload exceeds the limit of {mb:g} MB", f.filename),
            )
            return
        if f.fh is not None:
            f.fh.write(data[start:end])
            return
        f.head += data[start:end]
        if len(f.head) >= SNIFF_BYTES:
            self._open(f)

    def _on_part_end(self) -> None:
        f, self._cur = self._cur, None
        if f is None or f.problem is not None:
            return
        if f.fh is None:
            if f.size == 0:
                self._fail(f, audio_problem(EmptyAudioError(f.filename, "0 bytes uploaded"), f.filename, None))
                return
            self._open(f)  # shorter than SNIFF_BYTES
            if f.problem is not None:
                return
        f.fh.close()

    def _on_end(self) -> None:
        self.finished = True

    # -- helpers
    def _open(self, f: UploadedFile) -> None:
        head = bytes(f.head)
        f.fmt = sniff_format(head[:SNIFF_BYTES])
        if f.fmt is None:
            exc = NotAudioError(f.filename, f"content does not look like audio (starts with {head[:8]!r})")
            self._fail(f, audio_problem(exc, f.filename, None))
            return
        fh = tempfile.NamedTemporaryFile(
            mode="wb", prefix="adv-upload-", suffix=_SUFFIX.get(f.fmt, ""), dir=self.tmp_dir, delete=False
        )
        self._paths.append(fh.name)
        f.fh, f.path = fh, fh.name
        fh.write(head)
        f.head = bytearray()

    def _fail(self, f: UploadedFile, problem: ServiceProblem) -> None:
        f.problem = problem
        f.head = bytearray()
        if f.fh is not None:
            f.fh.close()
        if f.path:
            self.discard(f.path)
            f.path = None
        if self.strict:
            raise problem

    # -- public
    def feed(self, chunk: bytes) -> None:
        self.parser.write(chunk)

    def discard(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError:
            logger.warning("could not remove temporary file %s", path, exc_info=True)

    def cleanup(self) -> None:
        for f in self.files:
            if f.fh is not None and not f.fh.closed:
                f.fh.close()
        for p in self._paths:
            self.discard(p)
        self._paths.clear()


# --------------------------------------------------------------------------- one request's upload
@asynccontextmanager
async def received_upload(
    request: Request, settings: ServiceSettings, *, file_fields: tuple[str, ...], max_files: int, strict: bool
) -> AsyncIterator[UploadReceiver]:
    """Streams the request body into temporary files and yields the receiver (at least one file);
    the files are deleted when the block ends, whatever happens.

    Nothing is buffered in memory: 413 as soon as a limit is passed, 415 for content that is not
    audio (the file extension is never trusted), 408 for a body that arrives too slowly, 400 for a
    malformed one; the client's file name only appears in messages.
    """
    rec = _open_receiver(request, settings, file_fields=file_fields, max_files=max_files, strict=strict)
    try:
        await _receive_body(request, rec, settings, max_files)
        if not rec.files:
            got = ", ".join(repr(n) for n in rec.other_fields) or "none"
            raise ServiceProblem(
                400, "MissingFile", f"the multipart field '{file_fields[0]}' is required (got fields: {got})"
            )
        yield rec
    except ClientDisconnect:
        raise ServiceProblem(400, "BadRequest", "client disconnected during the upload") from None
    finally:
        rec.cleanup()


def _open_receiver(
    request: Request, settings: ServiceSettings, *, file_fields: tuple[str, ...], max_files: int, strict: bool
) -> UploadReceiver:
    ctype, opts = parse_options_header(request.headers.get("content-type", ""))
    boundary = opts.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        p = ServiceProblem(
            400, "BadRequest", f"expected a multipart/form-data upload with the field '{file_fields[0]}'"
        )
        p.close_connection = True  # the body is not read
        raise p
    try:
        return UploadReceiver(
            boundary,
            file_fields=file_fields,
            max_files=max_files,
            max_file_bytes=settings.max_upload_bytes,
            tmp_dir=settings.tmp_dir,
            strict=strict,
        )
    except Exception:  # e.g. an over-long boundary
        raise ServiceProblem(400, "BadRequest", "invalid multipart boundary") from None


async def _receive_body(request: Request, rec: UploadReceiver, s: ServiceSettings, max_files: int) -> None:
    """Feeds the request body to the receiver, enforcing the total body limit and the time-outs."""
    cap = max_files * (s.max_upload_bytes + MULTIPART_OVERHEAD)
    mb = s.max_upload_mb
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        p = ServiceProblem(
            413, "FileTooLarge", f"request body of {int(declared)} bytes exceeds the upload limit of {mb:g} MB per file"
        )
        p.close_connection = True
        raise p
    total = 0
    deadline = time.monotonic() + s.upload_timeout_s
    chunks = request.stream().__aiter__()
    try:
        while True:
            wait = min(s.body_idle_timeout_s, deadline - time.monotonic())
            try:
                chunk = await asyncio.wait_for(chunks.__anext__(), timeout=max(wait, 0.001))
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:
                slow = "arrive in" if time.monotonic() >= deadline else "pause longer than"
                limit = s.upload_timeout_s if slow == "arrive in" else s.body_idle_timeout_s
                raise ServiceProblem(408, "RequestTimeout", f"the upload did not {slow} {limit:g} s") from None
            if not chunk:
                continue
            total += len(chunk)
            if total > cap:
                rec.feed(chunk[: len(chunk) - (total - cap)])  # a per-file limit names the file
                raise ServiceProblem(
                    413, "FileTooLarge", f"request body exceeds the upload limit of {mb:g} MB per file"
                )
            rec.feed(chunk)
        rec.parser.finalize()
    except ServiceProblem as p:
        p.close_connection = True
        raise
    except MultipartParseError as exc:
        p = ServiceProblem(400, "BadRequest", f"malformed multipart body: {exc}")
        p.close_connection = True
        raise p from None
    if not rec.finished:
        raise ServiceProblem(400, "BadRequest", "incomplete multipart body (no closing boundary)")
