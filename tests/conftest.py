import io
import os
import time

# Hub loaders (timm, torchvision, huggingface) must fail fast: no network here or in CI.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One pytest-xdist worker per core already keeps the cores busy: torch's OpenMP pool in each
    # worker would only compete with the other workers (and spin). Set before torch is imported;
    # tests that need more threads set them themselves. Numba's pool keeps its size, so the
    # thread-count tests still compare one thread with several.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# numba's first compile and scipy quadrature exceed hypothesis' default deadline.
# CI runs a fixed set of examples (derandomize: the same on every run, never flaky); the
# "thorough" profile searches afresh each time for what that fixed set misses.
settings.register_profile("default", deadline=None, max_examples=30, derandomize=True)
settings.register_profile("thorough", deadline=None, max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# FiLM tests (test_empirical_film*.py) share a tiny random EfficientNet-Lite0 and one torch thread.
FILM_RESOLUTION = 32


@pytest.fixture(scope="module")
def one_thread():
    """Tiny passes run fastest on one thread (and a busy machine makes two much slower)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def backbone():
    """The Lite0 architecture with seeded random weights at 32 px (fast, offline)."""
    from mialaw.empirical.film_net import tiny_lite_backbone

    return tiny_lite_backbone(resolution=FILM_RESOLUTION, seed=0)


class TimedLog(io.StringIO):
    """A progress stream that also records when each piece of text was written."""

    def __init__(self):
        super().__init__()
        self.start = time.monotonic()
        self.stamps: list[tuple[float, str]] = []

    def write(self, text):
        self.stamps.append((time.monotonic() - self.start, text))
        return super().write(text)


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """`reproduce("smoke")` run once per session: (out, report), the report holding the log
    (``log``), when each piece of it was written (``stamps``) and the run's ``duration``. Read by
    the tests of reproduce and as the uninterrupted reference of the SIGKILL test."""
    from mialaw.paper import reproduce as rp

    out = tmp_path_factory.mktemp("smoke")
    log = TimedLog()
    report = rp.reproduce("smoke", out, device="cpu", stream=log)
    report.log, report.stamps = log.getvalue(), log.stamps
    report.duration = time.monotonic() - log.start
    return out, report


@pytest.fixture(scope="session")
def dask_cluster():
    """One real Dask `LocalCluster` for the session: two single-threaded worker processes."""
    pytest.importorskip("distributed")
    from mialaw.paper.executors import executor_from

    with executor_from(workers=2) as executor:
        yield executor


# ------------------------------------------------------------------ one worker per shared fixture
#: Fixtures built once per session that tests share across files: their tests run on one worker.
SESSION_GROUPS = ("smoke", "dask_cluster")
_SHARED_SCOPES = ("session", "package", "module", "class")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, tests that share an expensive fixture run on the same worker, so the
    fixture is built once: the session's smoke run and Dask cluster by name, and a module's
    shared fixtures by module. Every other test goes to whichever worker is free. A test that
    asks for a shared fixture at run time (``request.getfixturevalue``) carries its own
    ``xdist_group`` mark."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            group = _shared_fixture_group(item)
            if group is not None:
                item.add_marker(pytest.mark.xdist_group(group))


def _shared_fixture_group(item) -> str | None:
    names = getattr(item, "fixturenames", ())
    for name in SESSION_GROUPS:
        if name in names:
            return name
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    for name in names:
        if any(d.scope in _SHARED_SCOPES for d in definitions.get(name, ())):
            return item.nodeid.split("::", 1)[0]  # the module's file
    return None
