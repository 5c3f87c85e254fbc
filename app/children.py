"""Child processes that end with the process that started them, whatever ends it (a signal, a crash, SIGKILL)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets SIGTERM when this process dies (Linux
    ``PR_SET_PDEATHSIG``; None elsewhere).

    Linux sends it when the *thread* that started the child ends, so start such children from a thread that lives
    as long as the process (the main thread). The child checks its parent is still the one that forked it: if the
    parent died between the fork and the prctl, nobody would send the signal.
    """
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl     # looked up here: after the fork, only the call
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def set_up() -> None:
        prctl(1, signal.SIGTERM)                            # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return set_up


__all__ = ["die_with_parent"]
