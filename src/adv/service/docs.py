"""The API documentation: the app's description, and /docs (Swagger UI) and /redoc served with their
scripts and styles from the installed fastapi-offline package, so they work without internet."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from adv.service.settings import ServiceSettings

STATIC_PATH = "/docs-static"
TITLE = "Audio Distortion Validator"


def app_description(settings: ServiceSettings) -> str:
    """The OpenAPI description of an app with these limits."""
    return (
        "Detects damage in music files: clipping, MP3 compression artifacts, noise, EQ problems "
        "and stereo phase problems, with a severity (0-100), a confidence and a timeline.\n\n"
        f"Uploads are multipart/form-data; the format is detected from the content. Limits: "
        f"{settings.max_upload_mb:g} MB per file, {settings.max_batch_files} files per batch. "
        f"Audio longer than {settings.max_audio_seconds:g} s is refused. "
        "Errors are JSON `{error, detail, filename}`: 400 bad request, 401 API key, 408 upload too slow, "
        "413 too large or too long, 415 not audio, 422 unusable audio, 500 server error."
    )


def add_offline_docs(app: FastAPI) -> None:
    """Adds /docs, /redoc and their assets under STATIC_PATH (the app was made with docs_url=None)."""
    static = files("fastapi_offline") / "static"
    app.mount(STATIC_PATH, StaticFiles(directory=str(static)), name="docs-static")
    title = f"{app.title} - API"

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=title,
            swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PATH}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url,
            title=title,
            redoc_js_url=f"{STATIC_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC_PATH}/favicon.png",
            with_google_fonts=False,
        )
