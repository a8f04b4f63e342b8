"""Hand HiGHS a starting plan (a MIP start) without the ``setSolution`` pitfall of HiGHS 1.16.

``Highs.setSolution`` before ``run()`` looks like the natural way, but HiGHS 1.16 mishandles it
when presolve reduces the model: it maps the start into the reduced space, where its objective
can differ ("MIP start solution is feasible in the reduced space: objective value is …"), and
when no better plan than that reduced start is found it reports the *reduced* objective while
``getSolution()`` returns the *original* start vector – an objective the returned plan does not
have (reproduced by tests/models/test_head_start.py on a brute-force instance: reported 7.849,
plan 4.126). Offering the same full vector through the MIP user-solution callback instead lets
HiGHS take it as an incumbent of its own, whose postsolved vector and objective agree.
:func:`~.solve.solve_model` keeps a self-check of the reported objective against the plan's own
all the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np


@contextmanager
def offered_start(h: Any, values: np.ndarray | None) -> Iterator[None]:
    """Offer ``values`` (one value per HiGHS column, a complete and feasible plan) to HiGHS once,
    through ``cbMipUserSolution``, during the runs inside this block."""
    if values is None:
        yield
        return
    full = np.ascontiguousarray(values, dtype=np.float64)
    index = np.arange(full.size, dtype=np.int32)
    offered = [False]

    def offer(e: Any) -> None:
        if offered[0]:
            return
        offered[0] = True
        try:
            e.data_in.setSolution(index, full)
            e.data_in.user_has_solution = True
        except Exception:  # noqa: BLE001 - a start is a hint; it must never break a solve
            return

    h.cbMipUserSolution.subscribe(offer)
    try:
        yield
    finally:
        h.cbMipUserSolution.unsubscribe(offer)


_BANNER_SHOWN = [False]


def new_highs() -> Any:
    """A ``highspy.Highs`` with its output off and one thread.

    The first ``Highs()`` of a process prints HiGHS's banner ("Running HiGHS …") to file
    descriptor 1 before any option can be set, which would corrupt a command's stdout (the CLI's
    JSON, a table piped on). That first construction happens with fd 1 pointed at /dev/null.
    """
    import os
    import sys

    import highspy

    if _BANNER_SHOWN[0]:
        h = highspy.Highs()
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 1)
                h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _BANNER_SHOWN[0] = True
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    return h
