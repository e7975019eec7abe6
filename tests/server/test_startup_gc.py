"""What start-up built is frozen out of the garbage collector's view once the server serves:
a full collection then walks only what serving created, not the ~80 000 objects of modules and
configuration (issue 14: collection pauses of 50-90 ms during logins before)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

# the real main loop in a process of its own: frozen objects counted once it serves, then stopped
# as an administrator would (SIGTERM)
PROBE = """
import asyncio, gc, json, os, signal, sys
from pathlib import Path
from vines_server.config import load
from vines_server.main import run

async def probe():
    config = load(sys.argv[1])
    state = config.sibling(".state.json")
    before = gc.get_freeze_count()
    serving = asyncio.create_task(run(config))
    while not state.exists():
        await asyncio.sleep(0.02)
    frozen = gc.get_freeze_count()
    os.kill(os.getpid(), signal.SIGTERM)
    await serving
    print(json.dumps({"before": before, "serving": frozen}))

asyncio.run(probe())
"""


def test_start_up_objects_are_frozen_once_serving(default_config: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(default_config)],
        capture_output=True,
        text=True,
        timeout=100,
        check=True,
        cwd=default_config.parent,
    )
    counts = json.loads(done.stdout.splitlines()[-1])
    assert counts["before"] == 0
    # the modules, the configuration and the listeners: thousands of objects, not a handful
    assert counts["serving"] > 5000
