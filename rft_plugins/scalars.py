"""What counts as a number when a grader returns one. Stdlib only: the sandbox worker uses it too.

``numbers.Real`` covers ``int``, ``float``, ``bool``, ``Fraction`` and NumPy's integer and float
scalars, but not ``numpy.bool_`` (NumPy does not register it), which a comparison such as
``array.sum() > 3`` returns; the docs promise NumPy scalars, so it is accepted too.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

_NUMPY_BOOL_NAMES = frozenset({"bool", "bool_"})


def _is_numpy_bool(value: Any) -> bool:
    kind = type(value)
    return kind.__module__ == "numpy" and kind.__name__ in _NUMPY_BOOL_NAMES


def real_number(value: Any) -> float | None:
    """``value`` as a float when it is a real number (NaN and infinity included: callers decide),
    else None."""
    if isinstance(value, numbers.Real) or _is_numpy_bool(value):
        try:
            return float(value)
        except OverflowError:  # an int past float's range: infinite, which callers refuse
            return math.copysign(math.inf, value)
        except (TypeError, ValueError):
            return None
    return None
