"""Batched L-BFGS: M separable objectives minimised at once, in lockstep (torch).

Each model keeps its own curvature pairs and its own step size, so the batch is exactly M
independent L-BFGS runs; every step evaluates all active models in one call of ``fun_grad`` (the
heads of :mod:`mialaw.empirical.heads` make that one large matrix product).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LbfgsResult", "batched_lbfgs"]


@dataclass(frozen=True)
class LbfgsResult:
    params: object  # torch tensor (M, P)
    objective: np.ndarray  # (M,) float64
    grad_max: np.ndarray  # (M,) largest |gradient| component at the end
    iterations: np.ndarray  # (M,) iterations used per model
    converged: np.ndarray  # (M,) bool


def batched_lbfgs(fun_grad, x0, *, max_iter, gtol, ftol, history=10, max_backtracks=40):
    """Minimise M separable objectives at once.

    ``fun_grad(params (k, P), idx (k,) long) -> (f (k,), g (k, P))`` evaluates models ``idx``.
    Each model keeps its own curvature pairs, its own initial scaling γ = sᵀy/yᵀy and its own
    backtracking (Armijo) step; models that have converged are frozen and no longer evaluated.
    A model stops when max|g| <= gtol_m, when its relative objective decrease stays below ftol
    for 5 iterations in a row (the rounding floor of the dtype), or when its line search fails.
    """
    import torch

    m_models = x0.shape[0]
    device = x0.device
    x = x0.clone()
    all_idx = torch.arange(m_models, device=device)
    f, g = fun_grad(x, all_idx)
    gtol = torch.as_tensor(gtol, dtype=x.dtype, device=device).expand(m_models)
    pairs = ([], [], [])  # s, y (M, P) and rho (M,) per iteration; rho = 0 marks a skipped pair
    iterations = torch.zeros(m_models, dtype=torch.long, device=device)
    stalled = torch.zeros(m_models, dtype=torch.long, device=device)
    active = g.abs().amax(1) > gtol
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        idx = active.nonzero().squeeze(1)
        ga, fa, xa = g[idx], f[idx], x[idx]
        d, slope = _lbfgs_direction(ga, idx, pairs)
        step, f_new, g_new, done = _backtrack(fun_grad, idx, xa, fa, ga, d, slope, max_backtracks)
        # models whose line search failed keep their point and stop
        step = torch.where(done, step, torch.zeros_like(step))
        s_new = step[:, None] * d
        _remember_pair(pairs, idx, s_new, g_new - ga, m_models, history)
        x[idx] = xa + s_new
        decrease = (fa - f_new) / torch.maximum(fa.abs(), f_new.abs()).clamp_min(1.0)
        f[idx] = f_new
        g[idx] = g_new
        iterations[idx] += 1
        stalled[idx] = torch.where(decrease > ftol, 0, stalled[idx] + 1)
        still = (g_new.abs().amax(1) > gtol[idx]) & (stalled[idx] < 5) & done
        active[idx] = still
    grad_max = g.abs().amax(1)
    return LbfgsResult(
        params=x,
        objective=f.double().cpu().numpy(),
        grad_max=grad_max.double().cpu().numpy(),
        iterations=iterations.cpu().numpy(),
        # Converged means the gradient test passed; a stalled line search that stops early is not.
        converged=(grad_max <= gtol).cpu().numpy(),
    )


def _lbfgs_direction(ga, idx, pairs):
    """(direction, its slope gᵀd) of the active models ``idx`` with gradients ``ga``: the
    two-loop recursion over their stored curvature pairs."""
    import torch

    s_hist, y_hist, rho_hist = pairs
    q = -ga
    alphas = []
    for s_k, y_k, r_k in zip(reversed(s_hist), reversed(y_hist), reversed(rho_hist)):
        a = r_k[idx] * (s_k[idx] * q).sum(1)
        q = q - a[:, None] * y_k[idx]
        alphas.append(a)
    if s_hist:
        s_k, y_k = s_hist[-1][idx], y_hist[-1][idx]
        yy = (y_k * y_k).sum(1)
        gamma = torch.where(yy > 0, (s_k * y_k).sum(1) / yy.clamp_min(1e-30), 1.0)
    else:
        # first step: unit-length move in the steepest-descent direction
        gamma = 1.0 / ga.norm(dim=1).clamp_min(1.0)
    d = gamma[:, None] * q
    for s_k, y_k, r_k, a in zip(s_hist, y_hist, rho_hist, reversed(alphas)):
        b = r_k[idx] * (y_k[idx] * d).sum(1)
        d = d + (a - b)[:, None] * s_k[idx]
    slope = (ga * d).sum(1)
    bad = ~(slope < 0)
    if bool(bad.any()):  # not a descent direction (numerical trouble): steepest descent
        d[bad] = -ga[bad] * gamma[bad, None] if s_hist else -ga[bad]
        slope = (ga * d).sum(1)
    return d, slope


def _backtrack(fun_grad, idx, xa, fa, ga, d, slope, max_backtracks):
    """Per-model backtracking line search (Armijo, c1 = 1e-4), evaluating only pending models.
    Returns (step, objective, gradient, accepted) per active model."""
    import torch

    feps = 10.0 * torch.finfo(xa.dtype).eps
    step = torch.ones(idx.shape[0], dtype=xa.dtype, device=xa.device)
    f_new = fa.clone()
    g_new = ga.clone()
    done = torch.zeros(idx.shape[0], dtype=torch.bool, device=xa.device)
    for _ls in range(max_backtracks):
        pend = (~done).nonzero().squeeze(1)
        if pend.numel() == 0:
            break
        trial = xa[pend] + step[pend, None] * d[pend]
        ft, gt = fun_grad(trial, idx[pend])
        armijo = ft <= fa[pend] + 1e-4 * step[pend] * slope[pend]
        # Near the optimum the decrease drowns in rounding (float32): accept the approximate
        # Wolfe conditions of Hager & Zhang instead (objective within rounding, directional
        # derivative shrunk: 0.9·φ'(0) <= φ'(α) <= -0.9998·φ'(0)).
        dphi = (gt * d[pend]).sum(1)
        approx = (
            (ft <= fa[pend] + feps * fa[pend].abs())
            & (dphi >= 0.9 * slope[pend])
            & (dphi <= -0.9998 * slope[pend])
        )
        ok = torch.isfinite(ft) & (armijo | approx)
        acc = pend[ok]
        f_new[acc] = ft[ok]
        g_new[acc] = gt[ok]
        done[acc] = True
        step[pend[~ok]] *= 0.5
    return step, f_new, g_new, done


def _remember_pair(pairs, idx, s_new, y_new, m_models: int, history: int) -> None:
    """Store this iteration's curvature pair (zero for the inactive models), keeping the last
    ``history``; a pair with too little curvature gets rho = 0 and is skipped."""
    import torch

    s_hist, y_hist, rho_hist = pairs
    sy = (s_new * y_new).sum(1)
    rho_new = torch.where(
        sy > 1e-10 * s_new.norm(dim=1) * y_new.norm(dim=1), 1.0 / sy.clamp_min(1e-30), 0.0
    )
    full_s = s_new.new_zeros((m_models, s_new.shape[1]))
    full_y = torch.zeros_like(full_s)
    full_r = s_new.new_zeros(m_models)
    full_s[idx], full_y[idx], full_r[idx] = s_new, y_new, rho_new
    s_hist.append(full_s)
    y_hist.append(full_y)
    rho_hist.append(full_r)
    if len(s_hist) > history:
        s_hist.pop(0), y_hist.pop(0), rho_hist.pop(0)
