"""The service's shared state (one per app, in ``app.state.service``): the settings, the one
validator (loaded once, at startup or on first use) and the limit on analyses running at once."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import Any

from starlette.concurrency import run_in_threadpool

from adv.audio_io import probe_audio
from adv.errors import AudioError, TooLongError
from adv.service.settings import ServiceSettings
from adv.service.uploads import ServiceProblem, UploadedFile, audio_problem

logger = logging.getLogger("adv.service")


class ServiceState:
    """Settings, validator and analysis semaphore shared by all requests of one app.

    Analyses are CPU-bound: they run in the thread pool, at most ``settings.max_concurrent`` at a
    time, so the event loop keeps answering.
    """

    def __init__(self, settings: ServiceSettings, validator: Any = None):
        if settings.tmp_dir:
            os.makedirs(settings.tmp_dir, exist_ok=True)
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
        """The validator, loading it (in the thread pool) on first use."""
        if self.validator is not None:
            return self.validator
        return await run_in_threadpool(self._load_sync)

    async def validator_or_503(self):
        """The validator, or a 503 answer when it cannot be loaded."""
        try:
            return await self.get_validator()
        except Exception:
            logger.exception("model could not be loaded")
            raise ServiceProblem(503, "ServiceUnavailable", "the model could not be loaded (see the server log)")

    def semaphore(self) -> asyncio.Semaphore:
        """The analysis slots of the running event loop (one semaphore per loop: tests may run several)."""
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem_loop is not loop:
            self._sem, self._sem_loop = asyncio.Semaphore(self.settings.max_concurrent), loop
        return self._sem

    async def analyze_file(self, f: UploadedFile, segments: bool, slots: asyncio.Semaphore) -> dict:
        """Runs the validator on one received file, in the thread pool, holding one of ``slots``."""
        if f.problem is not None:
            raise f.problem
        v = await self.get_validator()
        try:
            info = await run_in_threadpool(probe_audio, f.path)  # refuse long audio before decoding it
            limit = self.settings.max_audio_seconds
            if info.duration is not None and info.duration > limit:
                raise TooLongError(f.path, f"declares {info.duration:.1f} s, the limit is {limit:g} s")
            async with slots:
                result = await run_in_threadpool(v.analyze, f.path)
        except AudioError as exc:
            raise audio_problem(exc, f.filename, f.path) from None
        except Exception:
            logger.exception("analysis of upload %r (%s) failed", f.filename, f.path)
            raise ServiceProblem(
                500, "InternalError", f"{f.filename}: internal error during analysis (see the server log)", f.filename
            ) from None
        out = {"filename": f.filename}
        out.update({k: val for k, val in result.items() if k != "path"})
        if not segments:
            out.pop("segments", None)
        return out
