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
"""Enumeration of the valid values of tile decisions (pure, no TVM import)."""

from __future__ import annotations

from functools import lru_cache

# A loop of this many elements or more has too many tilings to enumerate usefully; its tile
# decision is then left fixed rather than stalling the descent.
MAX_TILINGS = 20000


def divisors(n: int) -> list[int]:
    """All positive divisors of ``n`` in increasing order."""
    small, large = [], []
    i = 1
    while i * i <= n:
        if n % i == 0:
            small.append(i)
            if i * i != n:
                large.append(n // i)
        i += 1
    return small + large[::-1]


@lru_cache(maxsize=1024)
def perfect_tilings(
    extent: int,
    n_splits: int,
    max_innermost_factor: int = -1,
    partition_pos: int = 0,
    innerpart_factor: int = 1,
) -> tuple[tuple[int, ...], ...]:
    """Every way MetaSchedule may tile a loop, in lexicographic order.

    A tiling is an ``n_splits``-tuple of positive factors whose product is ``extent`` (TVM
    silently repairs any other tuple, so only these are distinct programs). The innermost factor
    is at most ``max_innermost_factor`` when that is positive (``SamplePerfectTile``), and the
    product of the factors from ``partition_pos`` on is a multiple of ``innerpart_factor``
    (``SamplePartitionedTile``).

    Returns
    -------
    tilings : Tuple[Tuple[int, ...], ...]
        The valid tilings; empty when there are more than ``MAX_TILINGS``.
    """
    if extent < 1 or n_splits < 1:
        return ()
    out: list[tuple[int, ...]] = []

    def fill(prefix: tuple[int, ...], rest: int) -> bool:
        if len(prefix) == n_splits - 1:
            tiling = (*prefix, rest)
            if 0 < max_innermost_factor < rest:
                return True
            if innerpart_factor > 1:
                inner = 1
                for factor in tiling[partition_pos:]:
                    inner *= factor
                if inner % innerpart_factor:
                    return True
            out.append(tiling)
            return len(out) <= MAX_TILINGS
        return all(fill((*prefix, d), rest // d) for d in divisors(rest))

    if not fill((), extent):
        return ()
    return tuple(out)
