"""Test seam for the crash suite: `LLMAUG_CRASH_AT=<point>:<n>` kills this process with SIGKILL, exactly as
`kill -9` would, the n-th time it reaches `<point>`.

Points are a stage, optionally with a name: `train` (a student fit starts), `filter` (teacher outputs are about to
be filtered), `write` (a file's new content is fsynced beside it but not yet renamed over it) or `write/NAME` (the
same, for files called NAME only, e.g. `write/report.md`). The crash suite kills most runs from outside (at a
server request count or after a progress file appears); this seam reaches the steps too short to hit that way.
Unset, as outside that suite, `reached` costs one environment lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "LLMAUG_CRASH_AT"

_hits: Counter[str] = Counter()


def reached(stage: str, name: str = "") -> None:
    plan = os.environ.get(ENV)
    if not plan:
        return
    point, _, count = plan.rpartition(":")
    for key in (stage, f"{stage}/{name}") if name else (stage,):
        if key != point:
            continue
        _hits[key] += 1
        if str(_hits[key]) == count:
            os.kill(os.getpid(), signal.SIGKILL)
