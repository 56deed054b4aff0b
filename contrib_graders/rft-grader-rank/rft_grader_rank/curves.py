"""How much a correct answer at rank r is worth: the configurable curves of the rank grader."""

from __future__ import annotations

from typing import Callable, Literal

Curve = Literal["reciprocal", "top_k", "linear"]


def curve_function(curve: Curve, k: int | None) -> Callable[[int], float]:
    """``value(rank)`` for rank 1, 2, ... (1 is best), in [0, 1]:

    - ``reciprocal``: 1/rank, the reciprocal rank of MRR;
    - ``top_k``: 1 within the first k, else 0;
    - ``linear``: 1 at rank 1, falling by 1/k per rank, 0 from rank k+1 on.
    """
    if curve == "reciprocal":
        return lambda rank: 1.0 / rank
    if k is None:
        raise ValueError(f"curve {curve!r} needs k")
    if curve == "top_k":
        return lambda rank: 1.0 if rank <= k else 0.0
    return lambda rank: max(0.0, 1.0 - (rank - 1) / k)
