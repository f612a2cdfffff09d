"""Gamma-Gamma model of monetary value (Fader & Hardie 2013, "The Gamma-Gamma Model of
Monetary Value"; Fader, Hardie & Lee 2005, "RFM and CLV").

A customer's transaction values are Gamma(p, nu) around their own mean p / nu, and nu varies
across customers as Gamma(q, gamma). A customer is summarised by x (repeat transactions, x > 0)
and m (the mean value of those transactions). ``lifetimes`` is not in the lock file, so this is a
small maximum-likelihood implementation with scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float

    def as_dict(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "gamma": self.gamma}

    @property
    def population_mean(self) -> float:
        """E[M] of a customer with no history: p * gamma / (q - 1) (needs q > 1)."""
        if self.q <= 1.0:
            raise ValueError("the Gamma-Gamma mean needs q > 1")
        return self.p * self.gamma / (self.q - 1.0)


def _arrays(x, m) -> tuple[np.ndarray, np.ndarray]:
    x, m = (np.asarray(v, dtype=float) for v in (x, m))
    if np.any(x <= 0) or np.any(m <= 0):
        raise ValueError("Gamma-Gamma needs x > 0 transactions of mean value m > 0")
    return x, m


def log_likelihood(params: GammaGammaParams, x, m) -> np.ndarray:
    """Per-customer log density of the observed mean m of x transactions:
    Gamma(px+q) / (Gamma(px) Gamma(q)) * gamma^q * m^(px-1) * x^(px) / (gamma + m x)^(px+q)."""
    x, m = _arrays(x, m)
    p, q, g = params.p, params.q, params.gamma
    return (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(g)
        + (p * x - 1.0) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(g + m * x)
    )


def fit(x, m, *, initial: GammaGammaParams | None = None) -> GammaGammaParams:
    """Maximum-likelihood parameters over customers with at least one repeat transaction."""
    x, m = _arrays(x, m)
    if len(x) == 0:
        raise ValueError("Gamma-Gamma needs at least one customer with a repeat transaction")
    start = initial or GammaGammaParams(p=1.0, q=2.0, gamma=max(float(np.mean(m)), 1.0))

    def negative_ll(log_params: np.ndarray) -> float:
        return -float(np.mean(log_likelihood(GammaGammaParams(*np.exp(log_params)), x, m)))

    # Log-parameters keep all three positive; q is bounded away from 1 from below only by the
    # data, which conditional_expected_value checks.
    result = minimize(
        negative_ll,
        np.log([start.p, start.q, start.gamma]),
        method="Nelder-Mead",
        options={"maxiter": 4000, "xatol": 1e-7, "fatol": 1e-11},
    )
    result = minimize(negative_ll, result.x, method="L-BFGS-B", bounds=[(-12.0, 12.0)] * 3)
    return GammaGammaParams(*(float(v) for v in np.exp(result.x)))


def conditional_expected_value(params: GammaGammaParams, x, m) -> np.ndarray:
    """E[M | x, m] = (q - 1) / (px + q - 1) * p gamma / (q - 1) + px / (px + q - 1) * m:
    a weighted mean of the population mean and the customer's own mean. x = 0 (no repeat
    transaction) gives the population mean; m is ignored there."""
    x = np.asarray(x, dtype=float)
    m = np.where(x > 0, np.asarray(m, dtype=float), 0.0)
    if np.any(x < 0) or np.any((x > 0) & (m <= 0)):
        raise ValueError("Gamma-Gamma needs x >= 0 and m > 0 where x > 0")
    p, q, g = params.p, params.q, params.gamma
    if q <= 1.0:
        raise ValueError("the Gamma-Gamma expectation needs q > 1")
    return p * (g + x * m) / (p * x + q - 1.0)


def simulate(params: GammaGammaParams, x, rng: np.random.Generator) -> np.ndarray:
    """Mean value of x transactions per customer drawn from the model."""
    x = np.asarray(x, dtype=int)
    nu = rng.gamma(params.q, 1.0 / params.gamma, len(x))
    # The sum of x Gamma(p, nu) values is Gamma(p x, nu).
    return rng.gamma(params.p * x, 1.0 / nu) / x
