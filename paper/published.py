"""The published anchors the tables set our numbers beside (theory/science.md, section 1;
arXiv 2402.06674)."""

from __future__ import annotations

PUBLISHED_SLOPE_AVERAGE = -0.5
PUBLISHED_QUANTILE_SLOPES = {0.99: -0.56, 0.999: -0.57, 0.9999: -0.48, 1.0: -0.27}
PUBLISHED_R2 = {"fitting set (FPR 1e-3)": 0.93, "held-out backbone": 0.79}
# Shots per class before the average-case LiRA advantage is inside (ε = 1, δ = 1e-5)-DP, C = 2.
PUBLISHED_DP_SHOTS = {(1.0, 0.1): 160, (1.0, 0.01): 2_700, (1.0, 0.001): 19_000}
PUBLISHED_DP_WORST = 7e6
