"""The multi-node scenario of `test_multinode.py`, in a process of its own (a driver joins one cluster only):
several raylets on this machine (`ray.cluster_utils.Cluster`, as Ray's own tests do), teacher replicas and grid
cells spread over them, and one node removed in the middle of each. Writes WORK_FOLDER/report.json.

    python tests/distributed/cluster_scenario.py WORK_FOLDER
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import yaml
from ray.cluster_utils import Cluster

from llmaug.bench.run import run_bench
from llmaug.distributed.cluster import connect
from llmaug.distributed.grid import RayCellRunner
from llmaug.distributed.teacher import RayBackend
from llmaug.teachers import ResponseCache, Teacher, TeacherRequest
from llmaug.testing.backends import BatchSeededBackend

REQUESTS = 36
GRID = {
    "name": "spread", "defaults": {"student": "tfidf", "max_eval": 40}, "datasets": ["trec6"],
    "settings": [{"name": "2/class", "per_class": 2}], "seeds": [0, 1, 2], "resources": {"cpus": 2},
    "arms": [{"name": "none", "method": "none", "label_check": "none"},
             {"name": "oracle-llm2llm", "method": "llm2llm", "teacher": "pool:similar", "rounds": 2,
              "teacher_options": {"encoder": "tfidf"}, "cv_folds": 3}],
}


def main(folder: Path) -> dict:
    # Two logical CPUs a node: a replica or a cell on each, and room for a replacement on a surviving node.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=2) for _ in range(2)]
    cluster.wait_for_nodes()
    connect(cluster.address)  # joins by the cluster's HOST:PORT, as `--ray HOST:PORT` does
    try:
        report = {"teacher": teacher_scenario(cluster, workers, folder)}
        workers = [node for node in workers if node in cluster.worker_nodes] + [cluster.add_node(num_cpus=2)]
        cluster.wait_for_nodes()
        report["grid"] = grid_scenario(cluster, workers, folder)
        return report
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()


def teacher_scenario(cluster: Cluster, workers: list, folder: Path) -> dict:
    requests = [TeacherRequest.chat([{"role": "user", "content": f"request {i}"}]) for i in range(REQUESTS)]
    with Teacher(BatchSeededBackend()) as local:
        expected = [r.text for r in local.generate(requests)]
    log = folder / "teacher.log"
    backend = RayBackend(lambda: BatchSeededBackend(delay=0.5, log=log), replicas=3)
    placed = backend.nodes()
    doomed = next(node for node in workers if node.node_id in placed)
    removal = _when(lambda: log.exists() and len(log.read_text().splitlines()) >= 3,
                    lambda: cluster.remove_node(doomed, allow_graceful=False))
    cache = folder / "cache.sqlite"
    with Teacher(backend, cache=cache) as teacher:
        answers = [r.text for r in teacher.generate(requests)]
        calls = teacher.usage.calls
        removal.join()
        after = backend.nodes()
    with closing(ResponseCache(cache)) as stored:
        cached = len(stored)
    return {"placed_on": placed, "removed": doomed.node_id, "replicas_after": after, "same_answers": answers == expected,
            "calls": calls, "cached": cached, "batches_started": len(log.read_text().splitlines())}


def grid_scenario(cluster: Cluster, workers: list, folder: Path) -> dict:
    grid = folder / "grid.yaml"
    grid.write_text(yaml.safe_dump(GRID))
    work = folder / "work"
    starts = re.compile(r"\[ray\] node (\w+), pid")
    removed: list[str] = []

    def a_cell_running_on_a_worker() -> bool:
        for log in work.glob("logs/*oracle-llm2llm*.log"):
            nodes = starts.findall(log.read_text())
            doomed = [node for node in workers if nodes and node.node_id == nodes[-1]]
            if doomed and (work / "trec6" / "oracle-llm2llm").exists():
                removed.append(doomed[0].node_id)
                return True
        return False

    removal = _when(a_cell_running_on_a_worker,
                    lambda: cluster.remove_node(next(n for n in workers if n.node_id == removed[0]), allow_graceful=False))
    runner = RayCellRunner(cluster.address)
    outcome = run_bench(grid, results=folder / "results", work=work, cells=runner)
    removal.join()
    logs = {log.name: starts.findall(log.read_text()) for log in work.glob("logs/*.log")}
    return {"ran": len(outcome.ran), "failed": outcome.failed, "removed": removed[0] if removed else None,
            "starts": logs, "finished_on": sorted(set(runner.nodes.values()))}


def _when(condition, action, timeout: float = 120) -> threading.Thread:
    """Run `action` in a thread as soon as `condition()` holds."""

    def watch():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                action()
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    (folder / "report.json").write_text(json.dumps(main(folder)))
