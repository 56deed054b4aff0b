"""The first code of each test case's fresh interpreter (``python -I -B -c``), in the sandbox.

Reads the nonce the harness sent, sets the case's limits, runs setup, program and test in one
namespace, and writes ``nonce + "\\n" + report`` to the result pipe only if it gets to the end:
a program that exits early (``sys.exit(0)``, ``os._exit(0)``) never reports success. Standard
library only.
"""

import builtins
import json
import os
import resource
import sys


def _limit(limits):
    memory = limits["memory_mb"] * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    output = limits["max_output_bytes"] + 4096
    resource.setrlimit(resource.RLIMIT_FSIZE, (output, output))
    seconds = int(limits["time_limit_s"]) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds))


def _jsonable(value):
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    return repr(value)


def _function(namespace, name):
    """``name`` from the program, or a method of its ``Solution`` class (LeetCode style)."""
    function = namespace.get(name)
    if callable(function):
        return function
    solution = namespace.get("Solution")
    if isinstance(solution, type) and hasattr(solution, name):
        return getattr(solution(), name)
    raise NameError(f"the program defines no function {name!r}")


def main():
    folder, nonce_fd, result_fd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    nonce = os.read(nonce_fd, 64)
    os.close(nonce_fd)
    limits = json.loads(sys.argv[4])
    with open(os.path.join(folder, "case.json"), encoding="utf-8") as stream:
        case = json.load(stream)
    with open(os.path.join(folder, "solution.py"), encoding="utf-8") as stream:
        program = stream.read()
    mode = case["mode"]
    path = os.path.join(folder, "solution.py")
    namespace = {"__name__": "__main__" if mode == "stdio" else "solution", "__file__": path, "__builtins__": builtins}
    sys.argv = [path]
    _limit(limits)
    report = b""
    try:
        if case.get("setup"):
            exec(compile(case["setup"], "setup.py", "exec", dont_inherit=True), namespace)
        exec(compile(program, "solution.py", "exec", dont_inherit=True), namespace)
        if mode == "assert":
            exec(compile(case["test"], "test.py", "exec", dont_inherit=True), namespace)
        elif mode == "call":
            value = _function(namespace, case["fn_name"])(*case["args"])
            report = json.dumps(value, default=_jsonable).encode()
    except SystemExit as exit:
        if mode != "stdio" or exit.code not in (None, 0):
            raise  # before its tests ran: not a pass, whatever the status
    sys.stdout.flush()
    os.write(result_fd, nonce + b"\n" + report)


main()
