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
from dataclasses import dataclass
from typing import Any, Callable

from fastapi import FastAPI, Query, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from adv import __version__
from adv.errors import AudioError

logger = logging.getLogger("adv.service")

from adv.service.schemas import (
    AnalysisResult, BatchResponse, ErrorBody, Health, ModelInfo,
)
from adv.service.uploads import ServiceProblem, audio_problem, UploadedFile, UploadReceiver

DEFAULT_MAX_UPLOAD_MB = 100.0
DEFAULT_MAX_CONCURRENT = 2
DEFAULT_MAX_BATCH_FILES = 20
MULTIPART_OVERHEAD = 64 * 1024  # allowance per file for boundaries, part headers, small form fields
API_KEY_HEADER = "X-API-Key"




# --------------------------------------------------------------------------- settings and errors
@dataclass(frozen=True)
class ServiceSettings:
    max_upload_bytes: int
    api_key: str | None
    max_concurrent: int
    tmp_dir: str | None
    max_batch_files: int

    @property
    def max_upload_mb(self) -> float:
        return self.max_upload_bytes / 1e6


def _env_number(name: str, default: float, kind: Callable[[str], float]) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not a valid number") from None


def _settings(max_upload_mb, api_key, max_concurrent, tmp_dir, max_batch_files) -> ServiceSettings:
    mb = float(max_upload_mb) if max_upload_mb is not None else _env_number(
        "ADV_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB, float)
    conc = int(max_concurrent) if max_concurrent is not None else int(_env_number(
        "ADV_MAX_CONCURRENT", DEFAULT_MAX_CONCURRENT, int))
    nfiles = int(max_batch_files) if max_batch_files is not None else int(_env_number(
        "ADV_MAX_BATCH_FILES", DEFAULT_MAX_BATCH_FILES, int))
    if not mb > 0:
        raise ValueError(f"max_upload_mb must be positive, got {mb}")
    if conc < 1 or nfiles < 1:
        raise ValueError("max_concurrent and max_batch_files must be at least 1")
    key = api_key if api_key is not None else os.environ.get("ADV_API_KEY")
    tmp = tmp_dir if tmp_dir is not None else (os.environ.get("ADV_TMP_DIR") or None)
    return ServiceSettings(max_upload_bytes=max(1, int(mb * 1_000_000)), api_key=key or None,
                           max_concurrent=conc, tmp_dir=str(tmp) if tmp else None, max_batch_files=nfiles)


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
                self.validator = AudioDistortionValidator()
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

    def receiver(self, request: Request, *, file_field: str, max_files: int, strict: bool) -> UploadReceiver:
        ctype, opts = parse_options_header(request.headers.get("content-type", ""))
        boundary = opts.get(b"boundary")
        if ctype != b"multipart/form-data" or not boundary:
            p = ServiceProblem(400, "BadRequest", f"expected a multipart/form-data upload with the field '{file_field}'")
            p.close_connection = True  # the body is not read
            raise p
        try:
            return UploadReceiver(boundary, file_field=file_field, max_files=max_files,
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
        try:
            async for chunk in request.stream():
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
    413: {"model": ErrorBody, "description": "upload larger than the limit"},
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


def create_app(validator: Any = None, max_upload_mb: float | None = None, api_key: str | None = None,
               max_concurrent: int | None = None, tmp_dir: str | os.PathLike | None = None,
               max_batch_files: int | None = None) -> FastAPI:
    """Builds the FastAPI app.

    Args:
        validator: an AudioDistortionValidator (or anything with ``analyze(path)`` and
            ``model_info()``); by default the shipped model is loaded once at startup.
        max_upload_mb: per-file upload limit (env ADV_MAX_UPLOAD_MB, default 100).
        api_key: when set (env ADV_API_KEY), every endpoint but /health and the docs requires the
            header ``X-API-Key``.
        max_concurrent: analyses running at once (env ADV_MAX_CONCURRENT, default 2).
        tmp_dir: where uploads are spooled (env ADV_TMP_DIR, default the system temp folder).
        max_batch_files: files per /analyze/batch request (env ADV_MAX_BATCH_FILES, default 20).
    """
    settings = _settings(max_upload_mb, api_key, max_concurrent, tmp_dir, max_batch_files)
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
            "Errors are JSON `{error, detail, filename}`: 400 bad request, 401 API key, 413 too large, "
            "415 not audio, 422 unusable audio, 500 server error."),
        lifespan=lifespan,
    )
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
        return v.model_info()

    @app.post("/analyze", response_model=AnalysisResult, response_model_exclude_unset=True,
              responses=_ERRORS, dependencies=[Security(require_key)], tags=["analysis"],
              summary="Analyse one audio file", openapi_extra=_multipart_body("file", False, 1))
    async def analyze(request: Request, segments: bool = Query(
            True, description="include the per-window timeline")) -> dict:
        await _validator_or_503()
        rec = service.receiver(request, file_field="file", max_files=1, strict=True)
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
              description=f"Up to {settings.max_batch_files} files in the field `files`. A file that cannot be "
                          "analysed gives an error entry `{filename, error, detail, status_code}`; the others "
                          "are still analysed.",
              openapi_extra=_multipart_body("files", True, settings.max_batch_files))
    async def analyze_batch(request: Request, segments: bool = Query(
            True, description="include the per-window timelines")) -> dict:
        await _validator_or_503()
        n = settings.max_batch_files
        rec = service.receiver(request, file_field="files", max_files=n, strict=False)
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

    With ``workers > 1`` each worker process loads its own model; the settings are handed to the
    workers through the ADV_* environment variables, so ``validator`` cannot be given then.
    """
    import uvicorn

    if workers <= 1:
        uvicorn.run(create_app(**app_kw), host=host, port=port, log_level=log_level)
        return
    if app_kw.pop("validator", None) is not None:
        raise ValueError("a validator object cannot be shared by several worker processes")
    env = {"max_upload_mb": "ADV_MAX_UPLOAD_MB", "api_key": "ADV_API_KEY", "max_concurrent": "ADV_MAX_CONCURRENT",
           "tmp_dir": "ADV_TMP_DIR", "max_batch_files": "ADV_MAX_BATCH_FILES"}
    unknown = set(app_kw) - set(env)
    if unknown:
        raise TypeError(f"unknown service settings: {sorted(unknown)}")
    _settings(**{k: app_kw.get(k) for k in env})  # validate before forking
    for k, val in app_kw.items():
        if val is not None:
            os.environ[env[k]] = str(val)
    uvicorn.run("adv.service.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=log_level)
