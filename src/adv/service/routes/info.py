"""GET /health (liveness and readiness, always open) and GET /model (the loaded model's description)."""

from __future__ import annotations

import os

from fastapi import APIRouter, Depends, Security

from adv import __version__
from adv.service.dependencies import get_service, require_api_key
from adv.service.schemas import ERROR_RESPONSES, Health, ModelInfo
from adv.service.state import ServiceState

router = APIRouter(tags=["service"])


@router.get("/health", response_model=Health, summary="Liveness and readiness")
async def health(service: ServiceState = Depends(get_service)) -> dict:
    return {"status": "ok", "model_loaded": service.validator is not None, "version": __version__}


@router.get(
    "/model",
    response_model=ModelInfo,
    responses={k: ERROR_RESPONSES[k] for k in (401, 503)},
    dependencies=[Security(require_api_key)],
    summary="The loaded model",
)
async def model(service: ServiceState = Depends(get_service)) -> dict:
    v = await service.validator_or_503()
    info = dict(v.model_info())
    path = info.pop("model_path", None)  # the server's file system stays private
    info["model_file"] = os.path.basename(str(path)) if path else None
    return info
