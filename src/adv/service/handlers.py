"""Exception handlers: a ServiceProblem becomes its JSON error body; anything else a generic 500
(details only in the server log)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from adv.service.schemas import ErrorBody
from adv.service.uploads import ServiceProblem

logger = logging.getLogger("adv.service")


def problem_response(p: ServiceProblem) -> JSONResponse:
    """``{"error", "detail", "filename"}`` with the problem's status; Connection: close when the body was not read."""
    headers = {"Connection": "close"} if p.close_connection else None
    return JSONResponse(p.body(), status_code=p.status_code, headers=headers)


async def on_problem(request: Request, exc: ServiceProblem) -> JSONResponse:
    return problem_response(exc)


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(ErrorBody(error="InternalError", detail="internal server error").model_dump(), status_code=500)


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceProblem, on_problem)
    app.add_exception_handler(Exception, on_unexpected)
