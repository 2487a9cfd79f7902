"""`llmaug bench --ray`: cells as Ray tasks on the session's local Ray. The tables equal a sequential bench's
(modulo wall time), a cell whose worker is killed mid-run is run again and resumes, finished cells are skipped,
and a worker that cannot see the work folder stops the bench with a message saying so."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml

from llmaug.bench.results import read_rows
from llmaug.bench.run import run_bench
from llmaug.distributed.grid import MARKER, RayCellRunner, WorkFolderUnseen
from llmaug.testing.scripted import cli_exit_code

pytestmark = pytest.mark.ray

VARYING = ("wall_seconds", "resumed", "run_dir")  # where and how long a cell ran, not what it computed

GRID = {
    "name": "tiny",
    "defaults": {"student": "tfidf", "max_eval": 60},
    "datasets": ["trec6"],
    "settings": [{"name": "2/class", "per_class": 2}],
    "seeds": [0, 1],
    "resources": {"cpus": 1},
    "arms": [
        {"name": "none", "method": "none", "label_check": "none"},
        {"name": "oracle-llm2llm", "method": "llm2llm", "teacher": "pool:similar", "rounds": 2,
         "teacher_options": {"encoder": "tfidf"}, "cv_folds": 3},
        {"name": "oracle-random", "method": "paraphrase", "teacher": "pool:random", "match_added": "oracle-llm2llm"},
    ],
}


def write_grid(folder: Path) -> Path:
    path = folder / "grid.yaml"
    path.write_text(yaml.safe_dump(GRID))
    return path


def comparable_rows(results: Path, name: str) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in VARYING} for row in read_rows(results / name)]


def comparable_page(results: Path) -> str:
    """The Markdown page without its run facts (command, machine, times) and without the wall-time column."""
    lines = []
    for line in (results / "bench_tiny.md").read_text().splitlines():
        if line.startswith(("Command:", "Machine:", "Cells:")):
            continue
        if line.startswith("|"):
            cells = line.split("|")
            del cells[12]  # | setting | arm | method | teacher | seeds | acc | Δ | F1 | calls | tokens | added | wall s |
            line = "|".join(cells)
        lines.append(line)
    return "\n".join(lines)


def test_a_grid_on_ray_gives_the_sequential_tables_and_survives_a_killed_worker(ray_cluster, tmp_path):
    grid = write_grid(tmp_path)
    sequential = run_bench(grid, results=tmp_path / "sequential", work=tmp_path / "work-sequential")
    assert sequential.failed == [] and len(sequential.ran) == 6

    work = tmp_path / "work-ray"
    victim = work / "logs" / "trec6--oracle-llm2llm--2pc-s0-"
    killed: list[int] = []
    stop = threading.Event()

    def kill_the_first_llm2llm_cell_once():
        while not stop.is_set() and not killed:
            for log in work.glob("logs/*.log"):
                if str(log).startswith(str(victim)):
                    pids = re.findall(r"\[ray\] node \w+, pid (\d+)", log.read_text())
                    if pids and (work / "trec6" / "oracle-llm2llm").exists():
                        killed.append(int(pids[0]))
                        os.kill(killed[0], signal.SIGKILL)
            time.sleep(0.01)

    killer = threading.Thread(target=kill_the_first_llm2llm_cell_once, daemon=True)
    killer.start()
    runner = RayCellRunner()
    try:
        on_ray = run_bench(grid, results=tmp_path / "ray", work=work, cells=runner)
    finally:
        stop.set()
    assert on_ray.failed == [] and len(on_ray.ran) == 6 and killed
    victim_log = next(log for log in work.glob("logs/*.log") if str(log).startswith(str(victim)))
    assert len(re.findall(r"\[ray\] node", victim_log.read_text())) == 2  # run again after its worker died
    for table in ("bench_tiny.csv", "bench_tiny_rounds.csv"):
        assert comparable_rows(tmp_path / "ray", table) == comparable_rows(tmp_path / "sequential", table), table
    assert comparable_page(tmp_path / "ray") == comparable_page(tmp_path / "sequential")

    again = run_bench(grid, results=tmp_path / "ray", work=work, cells=RayCellRunner())
    assert again.ran == [] and len(again.reused) == 6


class BlindRunner(RayCellRunner):
    """A cluster whose workers do not share the driver's disk: the marker is gone before any task looks."""

    def start(self, work: Path) -> None:
        super().start(work)
        (work.resolve() / MARKER).unlink()


def test_a_worker_that_cannot_see_the_work_folder_stops_the_bench(ray_cluster, tmp_path, capsys, monkeypatch):
    grid = write_grid(tmp_path)
    with pytest.raises(WorkFolderUnseen, match="cannot see the work folder: run directories must live on a "
                                               "filesystem every node sees"):
        run_bench(grid, results=tmp_path / "results", work=tmp_path / "work", cells=BlindRunner())
    monkeypatch.setattr("llmaug.distributed.grid.RayCellRunner", BlindRunner)
    assert cli_exit_code(["bench", str(grid), "--results", str(tmp_path / "r2"), "--ray"]) == 2
    error = capsys.readouterr().err
    assert "cannot see the work folder" in error and "Traceback" not in error
