"""Child processes that end with their parent.

``render-signal up``, the test fixtures and the benchmark start servers
(redis-server, the services, Dovecot, workerd) as children. If the parent is
killed outright, nothing would stop them; on Linux, ``PR_SET_PDEATHSIG`` asks
the kernel to send them SIGTERM when the parent dies. The signal follows the
*thread* that started the child, so use it only from a long-lived thread.
"""

from __future__ import annotations

import ctypes
import signal

__all__ = ["die_with_parent"]

PR_SET_PDEATHSIG = 1

try:  # loaded before any fork so the pre-exec hook only makes one C call
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # not Linux/glibc: children simply won't follow a killed parent
    _LIBC = None


def die_with_parent() -> None:
    """``preexec_fn`` for ``subprocess.Popen``: SIGTERM this child when the parent dies."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
