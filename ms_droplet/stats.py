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

Free of TVM imports so that the descent logic that uses it can be unit-tested in milliseconds.
The test itself is SciPy's (``scipy.stats.ttest_ind``, Welch's variant, one-sided).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def mean(samples: Sequence[float]) -> float:
    """Return the arithmetic mean of a non-empty sequence."""
    return math.fsum(samples) / len(samples)


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
    if max(faster) == min(faster) and max(slower) == min(slower):
        return None  # no spread on either side: the test has nothing to weigh
    # Imported here, not at the top: upstream, this module is part of TVM's search strategy
    # package, which must import without SciPy (only a droplet descent needs it).
    from scipy.stats import ttest_ind

    result = ttest_ind(faster, slower, equal_var=False, alternative="less")
    p_value = float(result.pvalue)
    return None if math.isnan(p_value) else p_value


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
