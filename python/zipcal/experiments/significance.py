"""Small statistics for paired comparisons (no scipy): mean/std, paired t-test, sign test."""

from __future__ import annotations

import math
from typing import Dict, Optional, Sequence


def mean_std(xs: Sequence[float]) -> Dict[str, Optional[float]]:
    xs = [float(x) for x in xs]
    if not xs:
        return {"mean": None, "std": None, "n": 0}
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return {"mean": m, "std": sd, "n": len(xs)}


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(lbeta)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: int) -> float:
    """Two-sided p-value of Student's t with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def paired_test(a: Sequence[float], b: Sequence[float]) -> Dict[str, Optional[float]]:
    """Paired comparison of ``a`` against ``b`` (same seeds, same order): mean and
    std of the differences ``a - b``, paired t-test and exact sign-test p-values."""
    d = [float(x) - float(y) for x, y in zip(a, b)]
    out: Dict[str, Optional[float]] = {
        "n": len(d),
        "mean_diff": None,
        "std_diff": None,
        "t": None,
        "p_t": None,
        "p_sign": None,
    }
    if not d:
        return out
    ms = mean_std(d)
    out["mean_diff"], out["std_diff"] = ms["mean"], ms["std"]
    if len(d) > 1:
        sd = ms["std"] or 0.0
        if sd > 0:
            t = (ms["mean"] or 0.0) / (sd / math.sqrt(len(d)))
            out["t"] = t
            out["p_t"] = t_two_sided_p(t, len(d) - 1)
        elif ms["mean"]:
            out["t"] = math.copysign(math.inf, ms["mean"])
            out["p_t"] = 0.0
        else:
            out["p_t"] = 1.0
    out["p_sign"] = sign_test_p(d)
    return out


def sign_test_p(diffs: Sequence[float]) -> float:
    """Exact two-sided sign test (zero differences dropped)."""
    pos = sum(1 for x in diffs if x > 0)
    neg = sum(1 for x in diffs if x < 0)
    m = pos + neg
    if m == 0:
        return 1.0
    k = min(pos, neg)
    tail = sum(math.comb(m, i) for i in range(k + 1)) / 2.0**m
    return min(1.0, 2.0 * tail)
