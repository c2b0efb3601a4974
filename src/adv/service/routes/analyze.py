"""POST /analyze (one multipart file, field ``file``) and POST /analyze/batch (field ``files``, one
result or error entry per file); ``make_router`` documents the app's batch limit."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Query, Request, Security

from adv.service.dependencies import analysis_slots, get_service, require_api_key
from adv.service.schemas import ERROR_RESPONSES, AnalysisResult, BatchResponse
from adv.service.settings import ServiceSettings
from adv.service.state import ServiceState
from adv.service.uploads import ServiceProblem, received_upload

#: the multipart field of each endpoint, and the other one accepted as an alias
FILE_FIELDS = {"/analyze": ("file", "files"), "/analyze/batch": ("files", "file")}


async def analyze(
    request: Request,
    segments: bool = Query(True, description="include the per-window timeline"),
    service: ServiceState = Depends(get_service),
    slots: asyncio.Semaphore = Depends(analysis_slots),
) -> dict:
    await service.validator_or_503()
    async with received_upload(
        request, service.settings, file_fields=FILE_FIELDS["/analyze"], max_files=1, strict=True
    ) as rec:
        return await service.analyze_file(rec.files[0], segments, slots)


async def analyze_batch(
    request: Request,
    segments: bool = Query(True, description="include the per-window timelines"),
    service: ServiceState = Depends(get_service),
    slots: asyncio.Semaphore = Depends(analysis_slots),
) -> dict:
    await service.validator_or_503()
    async with received_upload(
        request,
        service.settings,
        file_fields=FILE_FIELDS["/analyze/batch"],
        max_files=service.settings.max_batch_files,
        strict=False,
    ) as rec:
        results = []
        for f in rec.files:  # one after the other: a big batch does not starve other clients
            try:
                results.append(await service.analyze_file(f, segments, slots))
            except ServiceProblem as p:
                results.append(p.entry())
            finally:
                if f.path:
                    rec.discard(f.path)
        n_err = sum(1 for r in results if "error" in r)
        return {"n_files": len(results), "n_errors": n_err, "results": results}


def _multipart_body(field_name: str, many: bool, max_files: int) -> dict:
    binary = {"type": "string", "format": "binary"}
    prop = (
        {"type": "array", "items": binary, "maxItems": max_files, "description": "audio files"}
        if many
        else {**binary, "description": "an audio file (wav, flac, aiff, ogg, mp3, m4a/aac, webm)"}
    )
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": [field_name], "properties": {field_name: prop}}
                }
            },
        }
    }


def make_router(settings: ServiceSettings) -> APIRouter:
    """The analysis routes, their OpenAPI naming this app's batch limit (the limit itself is read
    from the app's settings on each request)."""
    n = settings.max_batch_files
    router = APIRouter(tags=["analysis"], dependencies=[Security(require_api_key)])
    router.add_api_route(
        "/analyze",
        analyze,
        methods=["POST"],
        response_model=AnalysisResult,
        response_model_exclude_unset=True,
        responses=ERROR_RESPONSES,
        summary="Analyse one audio file",
        openapi_extra=_multipart_body("file", False, 1),
    )
    router.add_api_route(
        "/analyze/batch",
        analyze_batch,
        methods=["POST"],
        response_model=BatchResponse,
        response_model_exclude_unset=True,
        responses=ERROR_RESPONSES,
        summary="Analyse several audio files",
        description=f"Up to {n} files in the field `files` (or `file`). A file that cannot be analysed gives an "
        "error entry `{filename, error, detail, status_code}`; the others are still analysed.",
        openapi_extra=_multipart_body("files", True, n),
    )
    return router
