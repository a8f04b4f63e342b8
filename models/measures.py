"""Plan measures shared by extraction and explanation (docs/model.md §3): CVaR, payback year."""

from __future__ import annotations

import numpy as np


def cvar_of(npv: np.ndarray, prob: np.ndarray, alpha: float) -> float:
    """CVaR_α = max_η η - 1/(1-α) Σ_s p_s max(0, η - NPV_s): the maximum sits at some NPV_s."""
    best = -np.inf
    for eta in npv:
        best = max(best, float(eta - np.sum(prob * np.maximum(0.0, eta - npv)) / (1.0 - alpha)))
    return best


def payback_year(cumulative: np.ndarray, years: list[int], tol: float = 1e-9) -> int | None:
    """First year whose cumulative net cash flow is >= 0 after having been negative (docs/model.md §3)."""
    was_negative = False
    for t, v in enumerate(cumulative):
        if v < -tol:
            was_negative = True
        elif was_negative:
            return years[t]
    return None
