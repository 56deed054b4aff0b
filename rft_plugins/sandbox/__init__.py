"""A reusable sandbox for untrusted Python: warm worker processes behind OS-level isolation.

Used by the ``python`` grader; any grader that runs code it did not write can use it too::

    with SandboxPool(SandboxLimits(wall_time_s=5)) as pool:
        result = pool.run("def main(x):\n    return x * 2\n", [21])   # SandboxResult(ok=True, value=42)

The threat model, and what is and is not isolated, is in docs/sandbox.md.
"""

from __future__ import annotations

from .limits import SandboxLimits
from .pool import CODE_FAULTS, SandboxPool, SandboxResult, SandboxUnavailable

__all__ = ["CODE_FAULTS", "SandboxLimits", "SandboxPool", "SandboxResult", "SandboxUnavailable"]
