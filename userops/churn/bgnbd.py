"""BG/NBD ("beta-geometric / negative binomial distribution") model of repeat purchasing.

Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way". While alive a customer buys
at a Poisson rate lambda ~ Gamma(r, alpha); after each repeat purchase they drop out with
probability p ~ Beta(a, b). A customer is summarised by x (repeat purchases), t_x (time of the
last purchase) and T (age), all measured from the first purchase. ``lifetimes``/``btyd`` are not
in the lock file, so this is a small implementation with scipy (a scikit-learn dependency).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1


@dataclass(frozen=True)
class BGNBDParams:
    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


def _arrays(x, t_x, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_x > T):
        raise ValueError("BG/NBD needs x >= 0 and 0 <= t_x <= T")
    return x, t_x, T


def log_likelihood(params: BGNBDParams, x, t_x, T) -> np.ndarray:
    """Per-customer log-likelihood of the paper, computed in log space for stability."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    log_a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    log_a3 = -(r + x) * np.log(alpha + T)
    # A4 only exists for x > 0 (a customer with no repeat purchase cannot have dropped out);
    # b + x - 1 is evaluated on a safe value where x = 0 and masked away.
    has_repeat = x > 0
    safe = np.where(has_repeat, b + x - 1.0, 1.0)
    log_a4 = np.log(a) - np.log(safe) - (r + x) * np.log(alpha + t_x)
    log_tail = np.where(has_repeat, np.logaddexp(log_a3, log_a4), log_a3)
    return log_a1 + log_a2 + log_tail


def fit(x, t_x, T, *, initial: BGNBDParams | None = None) -> BGNBDParams:
    """Maximum-likelihood parameters. Identical (x, t_x, T) rows are counted once and weighted,
    so fitting scales with distinct histories, not customers."""
    x, t_x, T = _arrays(x, t_x, T)
    if len(x) == 0:
        raise ValueError("BG/NBD needs at least one customer")
    rows, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    ux, ut_x, uT = rows[:, 0], rows[:, 1], rows[:, 2]
    start = initial or BGNBDParams(r=1.0, alpha=max(float(np.mean(T)), 1.0), a=1.0, b=1.0)

    def negative_ll(log_params: np.ndarray) -> float:
        params = BGNBDParams(*np.exp(log_params))
        return -float(np.sum(counts * log_likelihood(params, ux, ut_x, uT))) / counts.sum()

    # Optimising log-parameters keeps all four positive without constraints.
    result = minimize(
        negative_ll,
        np.log([start.r, start.alpha, start.a, start.b]),
        method="Nelder-Mead",
        options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-10},
    )
    result = minimize(negative_ll, result.x, method="L-BFGS-B", bounds=[(-12.0, 12.0)] * 4)
    return BGNBDParams(*(float(v) for v in np.exp(result.x)))


def p_alive(params: BGNBDParams, x, t_x, T) -> np.ndarray:
    """P(still alive at T | x, t_x, T); 1 when x = 0, as the model
    only lets a customer drop out right after a repeat purchase."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    has_repeat = x > 0
    safe = np.where(has_repeat, b + x - 1.0, 1.0)
    odds_dead = (a / safe) * np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + t_x)))
    return np.where(has_repeat, 1.0 / (1.0 + odds_dead), 1.0)


def p_no_purchase(params: BGNBDParams, x, t_x, T, horizon: float) -> np.ndarray:
    """P(no purchase in (T, T + horizon] | x, t_x, T).

    Dead customers never buy; an alive one buys nothing in the horizon when the Poisson
    process has no event there (dropout only follows a purchase), and given alive the rate's
    posterior is Gamma(r + x, alpha + T), so P = 1 - P(alive) * (1 - ((alpha+T)/(alpha+T+h))^(r+x)).
    """
    x, t_x, T = _arrays(x, t_x, T)
    alive = p_alive(params, x, t_x, T)
    silent_if_alive = np.exp(
        (params.r + x) * (np.log(params.alpha + T) - np.log(params.alpha + T + horizon))
    )
    return 1.0 - alive * (1.0 - silent_if_alive)


def simulate(
    params: BGNBDParams, T, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw (x, t_x, T) for customers observed for T each (born with a purchase at 0)."""
    T = np.asarray(T, dtype=float)
    n = len(T)
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    clock = np.zeros(n)
    running = np.ones(n, dtype=bool)
    while running.any():
        idx = np.flatnonzero(running)
        clock[idx] += rng.exponential(1.0 / lam[idx])
        bought = clock[idx] <= T[idx]
        buyers = idx[bought]
        x[buyers] += 1
        t_x[buyers] = clock[buyers]
        # Past the horizon, or dropped out right after this purchase: nothing more observed.
        dies = rng.random(len(buyers)) < p[buyers]
        running[idx[~bought]] = False
        running[buyers[dies]] = False
    return x, t_x, T


def expected_purchases(params: BGNBDParams, horizon) -> np.ndarray:
    """E[X(t)]: expected purchases in (0, t] of a customer just born (FHL 2005, eq. 9)."""
    t = np.asarray(horizon, dtype=float)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if a == 1.0:
        raise ValueError("the BG/NBD expectation is singular at a = 1")
    z = t / (alpha + t)
    tail = np.exp(r * (np.log(alpha) - np.log(alpha + t))) * hyp2f1(r, b, a + b - 1.0, z)
    return (a + b - 1.0) / (a - 1.0) * (1.0 - tail)


def conditional_expected_purchases(params: BGNBDParams, x, t_x, T, horizon: float) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in (T, T + t] (FHL 2005, eq. 10).

    The numerator is the expectation of a customer alive at T with the rate's posterior
    Gamma(r + x, alpha + T); the denominator turns it into one weighted by P(alive)."""
    x, t_x, T = _arrays(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if a == 1.0:
        raise ValueError("the BG/NBD expectation is singular at a = 1")
    t = float(horizon)
    z = t / (alpha + T + t)
    tail = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * hyp2f1(
        r + x, b + x, a + b + x - 1.0, z
    )
    numerator = (a + b + x - 1.0) / (a - 1.0) * (1.0 - tail)
    has_repeat = x > 0
    safe = np.where(has_repeat, b + x - 1.0, 1.0)
    odds_dead = (a / safe) * np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + t_x)))
    return numerator / (1.0 + np.where(has_repeat, odds_dead, 0.0))
