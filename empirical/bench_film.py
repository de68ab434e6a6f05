"""Benchmark of batched FiLM fine-tuning (not a test): ``python -m mialaw.empirical.bench_film``.

* ``passes``: one training forward/backward pass of FilmNet against its size (1 image, one
  model's minibatch, the batched arm's micro-batch of several models' minibatches): time per
  image-step, the per-pass fixed cost and per-image marginal cost fitted from them, the ratio
  that amortising all of the fixed cost could reach, and a profile (share of the convolutions,
  of the FiLM/activation elementwise work and of the rest) of both arms' passes.
* ``batching``: K FiLM models (a cell's target and shadows: 2·S·C candidates, each model on a
  balanced half) trained as one batched problem (``train_film`` on the whole keep matrix) against
  the same K models trained one at a time in this process (``train_film`` on one row of keep,
  with the same model id, so the same minibatches: the logits must agree). Both run on the same
  device with the same thread count; only training is timed (preprocessing and query logits
  excluded). Throughput is images × steps per second: the images that went through a training
  forward/backward pass, per second. Synthetic images (content does not change the arithmetic).
* ``cost``: one cell as the study would run it: 17 models, S = 64, C = 2 (256 candidates) on
  Fashion-MNIST (synthetic images when it is not installed) at 64 px with the default
  ``FilmSettings``: wall time of training and of the logits (and mirrored logits) of the 256
  candidates, and the test accuracy of the models on held-out test images.

On CPU at the default settings (64 px, batch 16) the ratio is ~1.1-1.2×, not the 3× target:
the frozen trunk does the same arithmetic per image in both arms and one model's 16-image pass
already keeps a core busy, so stacking models only amortises a pass's fixed cost (``passes``
prints the bound, ~1.3×). The ratio grows where that fixed cost dominates (small minibatches,
e.g. ``--tiny``) and on a GPU, where one model's minibatch leaves the device mostly idle.

``--tiny`` runs them on a random-weight Lite0 at 32 px with few models (a smoke test, seconds).
``--device cuda --resolution 224`` runs on a GPU (the backbone and all tensors on that device).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from mialaw.empirical.backbones import get_backbone
from mialaw.empirical.datasets import DatasetNotFoundError, load_dataset, stratified_shots
from mialaw.empirical.film_settings import FilmSettings


def _balanced_keep(models: int, labels, seed: int) -> np.ndarray:
    """Every model on a random half of each class (a study cell's keep matrix)."""
    rng = np.random.default_rng(seed)
    keep = np.zeros((models, labels.size), dtype=bool)
    for m in range(models):
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            keep[m, rng.permutation(members)[: members.size // 2]] = True
    return keep


def _synthetic(n: int, classes: int, seed: int = 0):
    """uint8 28×28 images, class c marked by a bright bar at a class-specific column."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = rng.integers(0, 200, (n, 28, 28)).astype(np.uint8)
    for c in range(classes):
        images[labels == c, :, 2 + 2 * c : 6 + 2 * c] = 255
    return images, labels


def _backbone(args):
    from mialaw.empirical.film_net import tiny_lite_backbone  # torch

    if args.tiny:
        return tiny_lite_backbone(resolution=args.resolution, device=args.device)
    return get_backbone(args.backbone, device=args.device, resolution=args.resolution)


def _pass_step(net, k: int, b: int, resolution: int, device):
    """One training forward/backward of k models × b images (random inputs), as ``train_film``
    runs it: θ with requires_grad, the stacked images, mean cross-entropy, backward."""
    import torch

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(k * b, 3, resolution, resolution, generator=gen).to(device)
    if device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, net.layout.classes, (k * b,), generator=gen).to(device)
    theta = (net.initial_params(k) + 0.05 * torch.randn(k, net.layout.size, generator=gen)).to(
        device
    )

    def step():
        sub = theta.detach().requires_grad_(True)
        logits = net(x, sub).reshape(-1, net.layout.classes)
        torch.nn.functional.cross_entropy(logits, y).backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


# Self-time categories of the profile: the frozen trunk's convolutions (forward and input-gradient
# backward) and the per-model elementwise work (FiLM affine, ReLU6, their backward, reductions).
_CONV_OPS = ("conv",)
_ELEMENTWISE_OPS = set(
    "mul addcmul clamp_ hardtanh_backward sum add add_ fill_ copy_ constant_pad_nd mean cat "
    "zero_ div mul_".split()
)


def _profile_shares(step, reps: int = 3) -> dict:
    """Shares of profiled self CPU time: convolutions, elementwise, the rest (dispatch,
    autograd bookkeeping, views). The profiler inflates per-op overhead: a lower bound on the
    convolutions' share of the unprofiled time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(reps):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    conv = sum(e.self_cpu_time_total for e in events if any(c in e.key for c in _CONV_OPS))
    elem = sum(
        e.self_cpu_time_total
        for e in events
        if e.key.startswith("aten::") and e.key[6:] in _ELEMENTWISE_OPS
    )
    ops = sum(e.count for e in events if e.key.startswith("aten::")) // reps
    other = 1 - (conv + elem) / total
    return {"conv": conv / total, "elementwise": elem / total, "other": other, "aten_calls": ops}


def bench_passes(backbone, *, models, settings, threads, rounds=5, profile=True):
    """Time per image-step of one training pass against its size: where batching can help.

    Passes of 1 image, of one model's minibatch (b images: the one-at-a-time arm) and of k
    models' minibatches (k·b images, k up to the batched arm's micro-batch and twice it). The
    frozen trunk's arithmetic per image is the same in every pass, so stacking models can only
    amortise what a pass costs whatever its size (Python, dispatch, autograd bookkeeping, the
    per-layer overhead of small kernels), estimated from the 1-image and b-image passes:
    t(n) ≈ fixed + n·marginal. ``ceiling`` = t(b) / (b·marginal) bounds the ratio of any
    batching that keeps the marginal cost per image (cache effects make larger passes worse).
    """
    from mialaw.empirical.film import film_cpu_settings, micro_batch_size  # torch
    from mialaw.empirical.film_net import FilmNet

    device = backbone.device
    net = FilmNet(backbone.module, 2)
    b = settings.batch_size
    budget = micro_batch_size(device, settings.resolution, None)
    per_pass = max(1, min(models, budget // b))  # models per pass in the batched arm
    ks = sorted({1, 2, per_pass, min(models, 2 * per_pass), min(models, 4 * per_pass)})
    sizes = [(1, 1)] + [(k, b) for k in ks]
    cpu_clock = device.type == "cpu" and threads == 1  # CPU seconds are robust to a busy machine
    clock = time.process_time if cpu_clock else time.perf_counter
    best = {}
    with film_cpu_settings(device, threads):
        steps = {s: _pass_step(net, *s, settings.resolution, device) for s in sizes}
        for step in steps.values():
            step()  # warm-up: allocator, oneDNN primitives
        for _ in range(rounds):  # interleaved, best of each: the machine may be shared
            for (k, n), step in steps.items():
                reps = max(1, (4 * b) // (k * n))
                start = clock()
                for _ in range(reps):
                    step()
                best[k, n] = min(best.get((k, n), math.inf), (clock() - start) / reps)
        shares = {}
        if profile and device.type == "cpu":
            shares = {s: _profile_shares(steps[s]) for s in ((1, b), (per_pass, b))}
    one = best[1, b]
    marginal = (one - best[1, 1]) / (b - 1) if b > 1 else one
    fixed = best[1, 1] - marginal
    ceiling = one / (b * marginal) if marginal > 0 else math.inf  # (noise on tiny passes)
    unit = "CPU " if cpu_clock else ""
    print(
        f"[passes] one forward/backward pass, {settings.resolution} px, {backbone.name} on "
        f"{device}, threads={threads} ({unit}ms; the batched arm's pass is {per_pass} × {b})",
        flush=True,
    )
    for (k, n), t in best.items():
        mark = "  <- one at a time" if (k, n) == (1, b) else ""
        mark = "  <- batched arm" if (k, n) == (per_pass, b) and k > 1 else mark
        print(
            f"[passes] {k:3d} model(s) × {n:3d} = {k * n:4d} images: {1e3 * t:8.1f} ms/pass "
            f"{1e3 * t / (k * n):7.2f} ms/image-step ({one / b / (t / (k * n)):.2f}× one model)"
            f"{mark}"
        )
    print(
        f"[passes] fit t(n) = fixed + n·marginal from n = 1, {b}: fixed {1e3 * fixed:.1f} ms, "
        f"marginal {1e3 * marginal:.2f} ms/image; amortising all of the fixed cost gives at most "
        f"{ceiling:.2f}× over one model (target >= 3×)"
    )
    for (k, n), sh in shares.items():
        print(
            f"[passes] profile {k} × {n}: convolutions {sh['conv']:.0%}, FiLM/activation "
            f"elementwise {sh['elementwise']:.0%}, other (dispatch, autograd, views) "
            f"{sh['other']:.0%}; {sh['aten_calls']} aten calls per pass"
        )
    return {
        "best": best,
        "fixed": fixed,
        "marginal": marginal,
        "ceiling": ceiling,
        **{"shares": shares},
    }


def bench_batching(backbone, *, models, shots, classes, settings, threads, repeats=2):
    """Batched against one-at-a-time training; returns the throughput ratio.

    The baseline is the same code path (``train_film``) on one row of keep at a time: its
    passes are one model's minibatch (``batch_size`` images), the batched arm's are the
    micro-batch's worth of whole models; same thread count, same minibatches.
    """
    from mialaw.empirical.film import train_film

    images, labels = _synthetic(2 * shots * classes, classes)
    keep = _balanced_keep(models, labels, seed=0)
    common = dict(classes=classes, settings=settings, query=images[:4], threads=threads)
    best = {"batched": (0.0, 0.0), "single": (0.0, 0.0)}  # (per wall second, per CPU second)
    for _ in range(repeats):  # interleaved, best of each: the machine may be shared
        batched = train_film(backbone, images, labels, keep, **common)
        singles = [
            train_film(backbone, images, labels, keep[k : k + 1], model_ids=[k], **common)
            for k in range(models)
        ]
        for name, runs in (("batched", [batched]), ("single", singles)):
            steps = sum(r.image_steps for r in runs)
            wall = steps / sum(r.train_seconds for r in runs)
            cpu = steps / sum(r.train_cpu_seconds for r in runs)
            best[name] = (max(best[name][0], wall), max(best[name][1], cpu))
    diff = max(np.abs(r.logits[0] - batched.logits[k]).max() for k, r in enumerate(singles))
    ratio = best["batched"][0] / best["single"][0]
    ratio_cpu = best["batched"][1] / best["single"][1]
    print(
        f"[batching] {models} models × {keep[0].sum()} images, batch {settings.batch_size}, "
        f"{settings.epochs} epoch(s), {settings.resolution} px, {backbone.name} on "
        f"{backbone.device}, threads={threads}",
        flush=True,
    )
    for name, label in (("batched", "batched:      "), ("single", "one at a time:")):
        wall, cpu = best[name]
        print(
            f"[batching] {label} {wall:8.1f} images×steps/s ({cpu:.1f} per CPU second); "
            f"per image-step {1e3 / wall:.2f} ms wall, {1e3 / cpu:.2f} ms CPU"
        )
    print(
        f"[batching] RATIO batched / one at a time: {ratio:.2f}× "
        f"(per CPU second {ratio_cpu:.2f}×; target >= 3×); largest logit difference {diff:.1e}"
    )
    return {"ratio": ratio, "ratio_cpu": ratio_cpu, "max_diff": diff, **best}


def _cost_data(classes: int, shots: int, tests: int, tiny: bool):
    """Candidates (2·S per class) and held-out test images: Fashion-MNIST, else synthetic."""
    if not tiny:
        try:
            train = load_dataset("fashion-mnist", classes=classes, split="train")
            test = load_dataset("fashion-mnist", classes=classes, split="test")
        except DatasetNotFoundError as exc:
            print(f"[cost] {str(exc).split(';')[0]}: synthetic images instead")
        else:
            idx = stratified_shots(train.labels, shots, seed=0)
            pick = np.random.default_rng(1).permutation(len(test))[:tests]
            source = "fashion-mnist"
            return (
                train.images[idx],
                train.labels[idx],
                test.images[pick],
                test.labels[pick],
                source,
            )
    images, labels = _synthetic(2 * shots * classes + tests, classes)
    n = 2 * shots * classes
    return images[:n], labels[:n], images[n:], labels[n:], "synthetic"


def bench_cost(backbone, *, models, shots, classes, settings, threads, tests=500, tiny=False):
    """Wall time of one FiLM cell with the given settings, and its test accuracy."""
    from mialaw.empirical.film import train_film

    x, y, xt, yt, source = _cost_data(classes, shots, tests, tiny)
    keep = _balanced_keep(models, y, seed=0)
    start = time.perf_counter()
    res = train_film(
        backbone,
        x,
        y,
        keep,
        classes=classes,
        settings=settings,
        query=np.concatenate([x, xt]),
        threads=threads,
    )
    total = time.perf_counter() - start
    n, q = len(x), len(x) + len(xt)
    # The cell itself scores only its candidates: scale the query time to them.
    cell = total - res.query_seconds * (1 - n / q)
    acc = (res.logits[:, n:].argmax(-1) == yt).mean(1)
    acc_flip = (res.logits_flipped[:, n:].argmax(-1) == yt).mean(1)
    print(
        f"[cost] {models} models, S={shots}, C={classes} ({n} candidates, {keep[0].sum()} per "
        f"model) on {source} at {settings.resolution} px, {settings}"
    )
    print(
        f"[cost] training {res.train_seconds:.1f} s ({res.image_steps / res.train_seconds:.0f} "
        f"images×steps/s; CPU {res.train_cpu_seconds:.1f} s); logits of {q} queries + mirrors "
        f"{res.query_seconds:.1f} s; "
        f"one cell (training + {n} candidates' logits) ≈ {cell:.0f} s"
    )
    print(
        f"[cost] test accuracy on {len(yt)} held-out images: mean {acc.mean():.3f} "
        f"(min {acc.min():.3f}), mirrored {acc_flip.mean():.3f}; final training loss "
        f"{res.train_loss[:, -1].mean():.4f}"
    )
    return {"cell_seconds": cell, "accuracy": float(acc.mean())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("which", nargs="*", default=["passes", "batching", "cost"])
    parser.add_argument("--tiny", action="store_true", help="random Lite0 at 32 px, few models")
    parser.add_argument("--backbone", default="efficientnet-lite0")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--resolution", type=int, default=None, help="default 64 (tiny: 32)")
    parser.add_argument("--models", type=int, default=None, help="default 17 (tiny: 5)")
    parser.add_argument("--shots", type=int, default=None, help="default 64 (tiny: 8)")
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=FilmSettings.batch_size)
    parser.add_argument(
        "--epochs", type=int, default=1, help="batching: epochs timed (cost: the default)"
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for both (default: torch's)"
    )
    args = parser.parse_args(argv)
    bad = set(args.which) - {"passes", "batching", "cost"}
    if bad:
        parser.error(f"unknown benchmark(s) {sorted(bad)}; choose from passes, batching, cost")
    args.resolution = args.resolution or (32 if args.tiny else 64)
    models = args.models or (5 if args.tiny else 17)
    shots = args.shots or (8 if args.tiny else 64)
    try:
        import torch

        threads = args.threads or torch.get_num_threads()
        backbone = _backbone(args)
        base = dict(resolution=args.resolution, batch_size=args.batch_size)
        if "passes" in args.which:
            bench_passes(
                backbone,
                models=models,
                settings=FilmSettings(**base),
                threads=threads,
                rounds=args.repeats + 3,
            )
        if "batching" in args.which:
            bench_batching(
                backbone,
                models=models,
                shots=shots,
                classes=args.classes,
                settings=FilmSettings(epochs=args.epochs, **base),
                threads=threads,
                repeats=args.repeats,
            )
        if "cost" in args.which:
            bench_cost(
                backbone,
                models=models,
                shots=shots,
                classes=args.classes,
                settings=FilmSettings(**base),
                threads=threads,
                tiny=args.tiny,
            )
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
