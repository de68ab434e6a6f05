"""Resumable stages: each finished stage leaves one JSON file keyed by its configuration.

A stage's result is written atomically (temporary file, then ``os.replace``) only when the stage
has finished, so an interrupted run leaves either the previous result or nothing, never a torn
file. A stored result is reused only if its configuration matches exactly; otherwise it is
recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .lock import LOCK_NAME, folder_lock, remove_temporaries  # noqa: F401 (re-exported)


def config_key(config: dict) -> str:
    """A stable hash of a JSON-serialisable configuration."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_json_atomic(path: Path, payload) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=1, sort_keys=True, default=_jsonable)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _jsonable(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


class StageRunner:
    """Runs named stages in order, reusing finished ones, reporting progress on stderr."""

    def __init__(self, out_dir: Path, total: int, *, stream=None, force: bool = False):
        self.dir = Path(out_dir) / "stages"
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.force = force
        self.reused: list[str] = []
        self.timings: dict[str, float] = {}
        self.cpu: dict[str, float] = {}  # this process's CPU seconds per computed stage

    def path(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def load(self, name: str, config: dict):
        path = self.path(name)
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if stored.get("key") != config_key(config) or "result" not in stored:
            return None
        return stored["result"]

    def run(self, name: str, config: dict, compute: Callable[[], dict], estimate_s: float):
        """Return the stage's result: the stored one if its config matches, else compute it."""
        self.done += 1
        head = f"[{self.done}/{self.total}] {name}"
        if not self.force:
            cached = self.load(name, config)
            if cached is not None:
                print(f"{head}: reused finished stage ({self.path(name)})", file=self.stream)
                self.reused.append(name)
                return cached
        print(
            f"{head}: running (estimated {fmt_seconds(estimate_s)})", file=self.stream, flush=True
        )
        start, cpu = time.perf_counter(), time.process_time()
        result = compute()
        elapsed = time.perf_counter() - start
        self.timings[name] = elapsed
        payload = {"key": config_key(config), "config": config, "seconds": elapsed}
        payload["result"] = result
        write_json_atomic(self.path(name), payload)
        cpu = time.process_time() - cpu  # this process's threads (workers elsewhere not counted)
        self.cpu[name] = cpu
        print(
            f"{head}: done in {fmt_seconds(elapsed)} (CPU {fmt_seconds(cpu)})",
            file=self.stream,
            flush=True,
        )
        # Hand on what a resumed run would read back, so both give identical outputs.
        return self.load(name, config)


def fmt_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"
