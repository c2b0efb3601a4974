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


#: modules whose tests take long (model exports, training, real servers); `pytest -m "not slow"` skips them
SLOW_MODULES = {
    "test_training",
    "test_shipped_model",
    "test_onnx",
    "test_corpus",
    "test_feature_cache_levels",
    "test_robustness",
}


def pytest_collection_modifyitems(config, items):
    """Marks as ``slow`` every test of SLOW_MODULES and every test that needs the small corpus build."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if module in SLOW_MODULES or "small_corpus" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
