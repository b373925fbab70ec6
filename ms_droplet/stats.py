# Licensed to the Apache Software Foundation (ASF) under one
# or more contributor license agreements.  See the NOTICE file
# distributed with this work for additional information
# regarding copyright ownership.  The ASF licenses this file
# to you under the Apache License, Version 2.0 (the
# "License"); you may not use this file except in compliance
# with the License.  You may obtain a copy of the License at
#
#   http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing,
# software distributed under the License is distributed on an
# "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
# KIND, either express or implied.  See the License for the
# specific language governing permissions and limitations
# under the License.
"""Significance test for noisy run times.

Kept free of TVM and SciPy imports so that the descent logic that uses it can be unit-tested in
milliseconds. The Student-t tail comes from the regularised incomplete beta function, evaluated
with the continued fraction of Numerical Recipes (Lentz's method), which converges quickly for
the degrees of freedom seen here (a handful of repeats per candidate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def mean(samples: Sequence[float]) -> float:
    """Return the arithmetic mean of a non-empty sequence."""
    return math.fsum(samples) / len(samples)


def _variance(samples: Sequence[float]) -> float:
    """Unbiased sample variance (needs at least two samples)."""
    centre = mean(samples)
    return math.fsum((x - centre) ** 2 for x in samples) / (len(samples) - 1)


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
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
        if abs(delta - 1.0) < 1e-12:
            break
    return h


def _regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    # The continued fraction converges for x < (a + 1) / (a + b + 2); use the symmetry
    # I_x(a, b) = 1 - I_{1-x}(b, a) on the other side.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_sf(t: float, dof: float) -> float:
    """Survival function P(T > t) of Student's t distribution with ``dof`` degrees of freedom."""
    tail = 0.5 * _regularized_incomplete_beta(dof / 2.0, 0.5, dof / (dof + t * t))
    return tail if t >= 0 else 1.0 - tail


def welch_p_value(faster: Sequence[float], slower: Sequence[float]) -> float | None:
    """One-sided Welch t-test that ``faster`` has a smaller mean than ``slower``.

    Parameters
    ----------
    faster : Sequence[float]
        Run times of the candidate that is supposed to be faster.
    slower : Sequence[float]
        Run times of the reference.

    Returns
    -------
    p_value : Optional[float]
        The probability of a difference at least this large if both means were equal, or
        ``None`` when the test is undefined (fewer than two samples on a side, or no spread at
        all in either sample).
    """
    if len(faster) < 2 or len(slower) < 2:
        return None
    var_f, var_s = _variance(faster), _variance(slower)
    se2_f, se2_s = var_f / len(faster), var_s / len(slower)
    se2 = se2_f + se2_s
    if se2 <= 0.0:
        return None
    t = (mean(slower) - mean(faster)) / math.sqrt(se2)
    dof = (
        se2
        * se2
        / (se2_f * se2_f / (len(faster) - 1) + se2_s * se2_s / (len(slower) - 1) or 1e-300)
    )
    return student_t_sf(t, dof)


def is_significantly_faster(
    candidate: Sequence[float],
    reference: Sequence[float],
    *,
    significance: float,
    min_improvement: float,
) -> bool:
    """Decide whether ``candidate`` is faster than ``reference`` beyond measurement noise.

    The candidate must be at least ``min_improvement`` (a fraction) faster on average, and, when
    both sides carry enough repeats for a Welch t-test, the test must reject equal means at
    level ``significance``. With a single repeat per candidate (MetaSchedule's default
    ``EvaluatorConfig(repeat=1)``) only the relative threshold applies.

    Parameters
    ----------
    candidate : Sequence[float]
        Run times of the candidate, in any unit shared with ``reference``.
    reference : Sequence[float]
        Run times of the current best.
    significance : float
        Level of the one-sided test, in (0, 1).
    min_improvement : float
        Smallest relative gain that counts, in [0, 1).

    Returns
    -------
    faster : bool
        Whether the candidate is accepted as the new best.
    """
    if not candidate or not reference:
        return False
    ref_mean = mean(reference)
    gain = (ref_mean - mean(candidate)) / ref_mean if ref_mean > 0 else 0.0
    if gain <= min_improvement:
        return False
    p_value = welch_p_value(candidate, reference)
    return p_value is None or p_value < significance
