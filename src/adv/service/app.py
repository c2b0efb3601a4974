"""HTTP service: upload audio files and get the validator's verdict as JSON.

    POST /analyze          one multipart file (field ``file``)
    POST /analyze/batch    several files (field ``files``), one result or error entry per file
    GET  /health           liveness / readiness ({"status": "ok", "model_loaded": ...})
    GET  /model            the loaded model's description
    GET  /docs             OpenAPI documentation

One :class:`AudioDistortionValidator` is loaded per app (at startup, or on first use when the app
runs without its lifespan) and shared by all requests. Analyses are CPU-bound: they run in the
thread pool, at most ``max_concurrent`` at a time, so the event loop keeps answering.

Uploads are parsed as a stream: each file part goes straight to a temporary file while its size
is counted (413 as soon as the limit is passed, nothing is buffered in memory) and its first bytes
are sniffed for an audio container (415 for anything else; the file extension is never trusted).
Temporary files are always deleted. The client's file name only appears in messages.

Status codes: 400 malformed request, 401 missing/wrong X-API-Key, 413 upload too large,
415 not audio, 422 unusable audio (empty, truncated, corrupt, NaN samples, too short),
500 unexpected server error (generic message, details in the server log), 503 model unavailable.
Error bodies are ``{"error": <type>, "detail": <message>, "filename": <client file name or null>}``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import threading
import time
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Query, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from adv import __version__
from adv.audio_io import probe_audio
from adv.errors import AudioError, TooLongError
from adv.service.docs import add_offline_docs
from adv.service.protocol import protocol_with_header_timeout
from adv.service.schemas import (
    AnalysisResult, BatchResponse, ErrorBody, Health, ModelInfo,
)
from adv.service.settings import ENV, ServiceSettings, load_settings
from adv.service.uploads import ServiceProblem, audio_problem, UploadedFile, UploadReceiver

logger = logging.getLogger("adv.service")

MULTIPART_OVERHEAD = 64 * 1024  # allowance per file for boundaries, part headers, small form fields
API_KEY_HEADER = "X-API-Key"
#: the multipart field of each endpoint, and the other one accepted as an alias
FILE_FIELDS = {"/analyze": ("file", "files"), "/analyze/batch": ("files", "file")}


# --------------------------------------------------------------------------- the service
class _Service:
    """Per-app state: settings, the one validator, the analysis semaphore."""

    def __init__(self, settings: ServiceSettings, validator: Any = None):
        self.settings = settings
        self.validator = validator
        self._load_lock = threading.Lock()
        self._sem: asyncio.Semaphore | None = None
        self._sem_loop: asyncio.AbstractEventLoop | None = None

    def _load_sync(self):
        with self._load_lock:  # concurrent first requests load the model once
            if self.validator is None:
                from adv.inference.validator import AudioDistortionValidator

                t0 = time.perf_counter()
                self.validator = AudioDistortionValidator(max_audio_seconds=self.settings.max_audio_seconds)
                logger.info("model loaded in %.1f s", time.perf_counter() - t0)
            return self.validator

    async def get_validator(self):
        if self.validator is not None:
            return self.validator
        return await run_in_threadpool(self._load_sync)

    def semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem_loop is not loop:  # one per event loop (tests may run several)
            self._sem, self._sem_loop = asyncio.Semaphore(self.settings.max_concurrent), loop
        return self._sem

    def receiver(self, request: Request, *, file_fields: tuple[str, ...], max_files: int,
                 strict: bool) -> UploadReceiver:
        ctype, opts = parse_options_header(request.headers.get("content-type", ""))
        boundary = opts.get(b"boundary")
        if ctype != b"multipart/form-data" or not boundary:
            p = ServiceProblem(400, "BadRequest",
                               f"expected a multipart/form-data upload with the field '{file_fields[0]}'")
            p.close_connection = True  # the body is not read
            raise p
        try:
            return UploadReceiver(boundary, file_fields=file_fields, max_files=max_files,
                                   max_file_bytes=self.settings.max_upload_bytes, tmp_dir=self.settings.tmp_dir,
                                   strict=strict)
        except Exception:  # e.g. an over-long boundary
            raise ServiceProblem(400, "BadRequest", "invalid multipart boundary") from None

    async def receive(self, request: Request, rec: UploadReceiver, max_files: int) -> None:
        """Streams the request body through the receiver, enforcing the total body limit."""
        cap = max_files * (self.settings.max_upload_bytes + MULTIPART_OVERHEAD)
        mb = self.settings.max_upload_mb
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            p = ServiceProblem(413, "FileTooLarge",
                               f"request body of {int(declared)} bytes exceeds the upload limit of {mb:g} MB per file")
            p.close_connection = True
            raise p
        total = 0
        s = self.settings
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
                    raise ServiceProblem(408, "RequestTimeout",
                                         f"the upload did not {slow} {limit:g} s") from None
                if not chunk:
                    continue
                total += len(chunk)
                if total > cap:
                    rec.feed(chunk[:len(chunk) - (total - cap)])  # a per-file limit names the file
                    raise ServiceProblem(413, "FileTooLarge",
                                         f"request body exceeds the upload limit of {mb:g} MB per file")
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

    async def analyze_file(self, f: UploadedFile, segments: bool) -> dict:
        """Runs the validator on one received file (in the thread pool, under the semaphore)."""
        if f.problem is not None:
            raise f.problem
        v = await self.get_validator()
        try:
            info = await run_in_threadpool(probe_audio, f.path)  # refuse long audio before decoding it
            limit = self.settings.max_audio_seconds
            if info.duration is not None and info.duration > limit:
                raise TooLongError(f.path, f"declares {info.duration:.1f} s, the limit is {limit:g} s")
            async with self.semaphore():
                result = await run_in_threadpool(v.analyze, f.path)
        except AudioError as exc:
            raise audio_problem(exc, f.filename, f.path) from None
        except Exception:
            logger.exception("analysis of upload %r (%s) failed", f.filename, f.path)
            raise ServiceProblem(500, "InternalError",
                                 f"{f.filename}: internal error during analysis (see the server log)",
                                 f.filename) from None
        out = {"filename": f.filename}
        out.update({k: val for k, val in result.items() if k != "path"})
        if not segments:
            out.pop("segments", None)
        return out


def _problem_response(p: ServiceProblem) -> JSONResponse:
    headers = {"Connection": "close"} if p.close_connection else None
    return JSONResponse(p.body(), status_code=p.status_code, headers=headers)


_ERRORS = {
    400: {"model": ErrorBody, "description": "malformed request (not multipart, missing field, too many files)"},
    401: {"model": ErrorBody, "description": "missing or wrong X-API-Key (only when the server has a key)"},
    408: {"model": ErrorBody, "description": "the upload was too slow (pauses or total time over the limits)"},
    413: {"model": ErrorBody, "description": "upload larger than the limit, or audio longer than the limit"},
    415: {"model": ErrorBody, "description": "content is not a recognised audio format"},
    422: {"model": ErrorBody, "description": "unusable audio: empty, truncated, corrupt, invalid samples, too short"},
    500: {"model": ErrorBody, "description": "unexpected server error"},
    503: {"model": ErrorBody, "description": "the model could not be loaded"},
}


def _multipart_body(field_name: str, many: bool, max_files: int) -> dict:
    binary = {"type": "string", "format": "binary"}
    prop = ({"type": "array", "items": binary, "maxItems": max_files, "description": "audio files"}
            if many else {**binary, "description": "an audio file (wav, flac, aiff, ogg, mp3, m4a/aac, webm)"})
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": [field_name], "properties": {field_name: prop}}}}}}


def create_app(validator: Any = None, settings: ServiceSettings | None = None, **setting_values: Any) -> FastAPI:
    """Builds the FastAPI app.

    Args:
        validator: an AudioDistortionValidator (or anything with ``analyze(path)`` and
            ``model_info()``); by default the shipped model is loaded once at startup.
        settings: the limits and options (adv.service.settings.ServiceSettings); by default read
            from ``setting_values`` (its field names, e.g. ``max_upload_mb=5``) and the ADV_*
            environment variables. A bad value raises ConfigError naming it.
    """
    settings = settings or load_settings(**setting_values)
    if settings.tmp_dir:
        os.makedirs(settings.tmp_dir, exist_ok=True)
    service = _Service(settings, validator)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.get_validator()  # load the model before accepting requests; fail fast
        yield

    app = FastAPI(
        title="Audio Distortion Validator",
        version=__version__,
        description=(
            "Detects damage in music files: clipping, MP3 compression artifacts, noise, EQ problems "
            "and stereo phase problems, with a severity (0-100), a confidence and a timeline.\n\n"
            f"Uploads are multipart/form-data; the format is detected from the content. Limits: "
            f"{settings.max_upload_mb:g} MB per file, {settings.max_batch_files} files per batch. "
            f"Audio longer than {settings.max_audio_seconds:g} s is refused. "
            "Errors are JSON `{error, detail, filename}`: 400 bad request, 401 API key, 408 upload too slow, "
            "413 too large or too long, 415 not audio, 422 unusable audio, 500 server error."),
        lifespan=lifespan, docs_url=None, redoc_url=None,
    )
    add_offline_docs(app)
    app.state.service = service
    key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                              description="required only when the server was started with an API key")

    async def require_key(key: str | None = Security(key_header)) -> None:
        expected = settings.api_key
        if expected is None:
            return
        if key is None or not hmac.compare_digest(key.encode("utf-8"), expected.encode("utf-8")):
            p = ServiceProblem(401, "Unauthorized", f"missing or invalid {API_KEY_HEADER} header")
            p.close_connection = True  # the upload is not read
            raise p

    @app.exception_handler(ServiceProblem)
    async def _on_problem(request: Request, exc: ServiceProblem) -> JSONResponse:
        return _problem_response(exc)

    @app.exception_handler(Exception)
    async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(ErrorBody(error="InternalError", detail="internal server error").model_dump(),
                            status_code=500)

    async def _validator_or_503():
        try:
            return await service.get_validator()
        except Exception:
            logger.exception("model could not be loaded")
            raise ServiceProblem(503, "ServiceUnavailable", "the model could not be loaded (see the server log)")

    @app.get("/health", response_model=Health, tags=["service"], summary="Liveness and readiness")
    async def health() -> dict:
        return {"status": "ok", "model_loaded": service.validator is not None, "version": __version__}

    @app.get("/model", response_model=ModelInfo, responses={401: _ERRORS[401], 503: _ERRORS[503]},
             dependencies=[Security(require_key)], tags=["service"], summary="The loaded model")
    async def model() -> dict:
        v = await _validator_or_503()
        info = dict(v.model_info())
        path = info.pop("model_path", None)  # the server's file system stays private
        info["model_file"] = os.path.basename(str(path)) if path else None
        return info

    @app.post("/analyze", response_model=AnalysisResult, response_model_exclude_unset=True,
              responses=_ERRORS, dependencies=[Security(require_key)], tags=["analysis"],
              summary="Analyse one audio file", openapi_extra=_multipart_body("file", False, 1))
    async def analyze(request: Request, segments: bool = Query(
            True, description="include the per-window timeline")) -> dict:
        await _validator_or_503()
        rec = service.receiver(request, file_fields=FILE_FIELDS["/analyze"], max_files=1, strict=True)
        try:
            await service.receive(request, rec, max_files=1)
            if not rec.files:
                got = ", ".join(repr(n) for n in rec.other_fields) or "none"
                raise ServiceProblem(400, "MissingFile", f"the multipart field 'file' is required (got fields: {got})")
            return await service.analyze_file(rec.files[0], segments)
        except ClientDisconnect:
            raise ServiceProblem(400, "BadRequest", "client disconnected during the upload") from None
        finally:
            rec.cleanup()

    @app.post("/analyze/batch", response_model=BatchResponse, response_model_exclude_unset=True,
              responses=_ERRORS, dependencies=[Security(require_key)], tags=["analysis"],
              summary="Analyse several audio files",
              description=f"Up to {settings.max_batch_files} files in the field `files` (or `file`). "
                          "A file that cannot be "
                          "analysed gives an error entry `{filename, error, detail, status_code}`; the others "
                          "are still analysed.",
              openapi_extra=_multipart_body("files", True, settings.max_batch_files))
    async def analyze_batch(request: Request, segments: bool = Query(
            True, description="include the per-window timelines")) -> dict:
        await _validator_or_503()
        n = settings.max_batch_files
        rec = service.receiver(request, file_fields=FILE_FIELDS["/analyze/batch"], max_files=n, strict=False)
        try:
            await service.receive(request, rec, max_files=n)
            if not rec.files:
                got = ", ".join(repr(x) for x in rec.other_fields) or "none"
                raise ServiceProblem(400, "MissingFile", f"the multipart field 'files' is required (got fields: {got})")
            results = []
            for f in rec.files:  # one after the other: a big batch does not starve other clients
                try:
                    results.append(await service.analyze_file(f, segments))
                except ServiceProblem as p:
                    results.append(p.entry())
                finally:
                    if f.path:
                        rec.discard(f.path)
            n_err = sum(1 for r in results if "error" in r)
            return {"n_files": len(results), "n_errors": n_err, "results": results}
        except ClientDisconnect:
            raise ServiceProblem(400, "BadRequest", "client disconnected during the upload") from None
        finally:
            rec.cleanup()

    return app


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1, log_level: str = "info", **app_kw) -> None:
    """Runs the service with uvicorn (blocking). ``app_kw`` go to :func:`create_app`.

    The settings are validated before anything starts (ConfigError naming the bad one). With
    ``workers > 1`` each worker process loads its own model; the settings are handed to the
    workers through the ADV_* environment variables, so ``validator`` cannot be given then.
    """
    import uvicorn

    validator = app_kw.pop("validator", None)
    settings = load_settings(**app_kw)
    protocol = protocol_with_header_timeout(settings.header_timeout_s)
    if workers <= 1:
        uvicorn.run(create_app(validator, settings), host=host, port=port, log_level=log_level, http=protocol)
        return
    if validator is not None:
        raise ValueError("a validator object cannot be shared by several worker processes")
    for k, val in app_kw.items():
        if val is not None:
            os.environ[ENV[k]] = str(val)
    uvicorn.run("adv.service.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, http="adv.service.protocol:HeaderTimeoutProtocol")
