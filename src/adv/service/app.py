"""The HTTP service's app: ``create_app`` assembles the state, routes, error handlers and docs;
``serve`` runs it with uvicorn."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from adv import __version__
from adv.service.docs import TITLE, add_offline_docs, app_description
from adv.service.handlers import install_exception_handlers
from adv.service.protocol import protocol_with_header_timeout
from adv.service.routes import analyze, info
from adv.service.settings import ServiceSettings, load_settings
from adv.service.state import ServiceState


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
    service = ServiceState(settings, validator)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.get_validator()  # load the model before accepting requests; fail fast
        yield

    app = FastAPI(
        title=TITLE,
        version=__version__,
        description=app_description(settings),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    add_offline_docs(app)
    app.state.service = service
    install_exception_handlers(app)
    app.include_router(info.router)
    app.include_router(analyze.make_router(settings))
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
    if workers <= 1:
        uvicorn.run(
            create_app(validator, settings),
            host=host,
            port=port,
            log_level=log_level,
            http=protocol_with_header_timeout(settings.header_timeout_s),
        )
        return
    if validator is not None:
        raise ValueError("a validator object cannot be shared by several worker processes")
    os.environ.update(settings.environ())
    uvicorn.run(
        "adv.service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        http="adv.service.protocol:HeaderTimeoutProtocol",
    )
