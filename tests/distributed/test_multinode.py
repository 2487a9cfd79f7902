"""Several Ray nodes on this machine (`cluster_scenario.py`, in its own process): teacher replicas and grid cells
spread over the nodes, and both survive a node removed mid-run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

SCENARIO = Path(__file__).with_name("cluster_scenario.py")


def test_replicas_and_cells_spread_over_nodes_and_survive_one_removed(tmp_path):
    pytest.importorskip("ray")
    output = tmp_path / "scenario.log"
    with output.open("w") as log:  # a file, not a pipe: Ray's own processes may hold a pipe open past the scenario
        done = subprocess.run([sys.executable, str(SCENARIO), str(tmp_path)], stdout=log, stderr=subprocess.STDOUT,
                              timeout=600, env={**os.environ, "RAY_ADDRESS": ""})
    assert done.returncode == 0, output.read_text()[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())

    teacher = report["teacher"]
    assert len(set(teacher["placed_on"])) == 3  # one replica per node
    assert teacher["same_answers"] and teacher["calls"] == teacher["cached"] == 36  # nothing lost or repeated
    assert teacher["removed"] not in teacher["replicas_after"] and len(teacher["replicas_after"]) == 3
    assert teacher["batches_started"] > 36 // 4  # the dead node's batch was sent again

    grid = report["grid"]
    assert grid["failed"] == [] and grid["ran"] == 6
    assert len({node for starts in grid["starts"].values() for node in starts}) >= 2  # cells spread over nodes
    rerun = [starts for starts in grid["starts"].values() if len(starts) == 2]
    assert rerun and rerun[0][0] == grid["removed"] and rerun[0][1] != grid["removed"]
