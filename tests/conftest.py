import os

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """A tiny corpus built once per test session with `--small` (music21 renders, no downloads)."""
    from adv.data.corpus_build import build_corpus

    out = tmp_path_factory.mktemp("corpus_small")
    summary = build_corpus(out, small=True)
    return out, summary
