import os

# Hub loaders (timm, torchvision, huggingface) must fail fast: no network here or in CI.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from hypothesis import settings  # noqa: E402

# numba's first compile and scipy quadrature exceed hypothesis' default deadline.
# CI runs a fixed set of examples (derandomize: the same on every run, never flaky); the
# "thorough" profile searches afresh each time for what that fixed set misses.
settings.register_profile("default", deadline=None, max_examples=30, derandomize=True)
settings.register_profile("thorough", deadline=None, max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
