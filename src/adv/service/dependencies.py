"""FastAPI dependencies of the routes: the shared service state, its settings, the API-key check
and the analysis slots (the concurrency limiter)."""

from __future__ import annotations

import asyncio
import hmac

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from adv.service.settings import ServiceSettings
from adv.service.state import ServiceState
from adv.service.uploads import ServiceProblem

API_KEY_HEADER = "X-API-Key"

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="required only when the server was started with an API key"
)


async def get_service(request: Request) -> ServiceState:
    """The app's ServiceState (``app.state.service``, set by create_app)."""
    return request.app.state.service


async def get_settings(service: ServiceState = Depends(get_service)) -> ServiceSettings:
    return service.settings


async def require_api_key(
    key: str | None = Security(api_key_header), settings: ServiceSettings = Depends(get_settings)
) -> None:
    """401 unless the X-API-Key header matches the server's key (no check when it has none)."""
    expected = settings.api_key
    if expected is None:
        return
    if key is None or not hmac.compare_digest(key.encode("utf-8"), expected.encode("utf-8")):
        p = ServiceProblem(401, "Unauthorized", f"missing or invalid {API_KEY_HEADER} header")
        p.close_connection = True  # the upload is not read
        raise p


async def analysis_slots(service: ServiceState = Depends(get_service)) -> asyncio.Semaphore:
    """The semaphore bounding analyses at once; held only while the validator runs, not during uploads."""
    return service.semaphore()
