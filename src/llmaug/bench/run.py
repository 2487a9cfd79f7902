"""`llmaug bench GRID.yaml`: every cell of a grid run as an `llmaug run`, resumable, with a progress display.

    <work>/<dataset>/<arm>/<sampling>-s<seed>-<config hash>/   one run directory per cell (cache, rounds, summary)
    <work>/seeds/...          the seed rows an oracle pool must not hand out
    <work>/logs/...           each cell's console output
    <results>/bench_<name>.csv           one row per finished cell
    <results>/bench_<name>_rounds.csv    one row per round of each cell (the plots)
    <results>/bench_<name>.md, bench_<name>_<dataset>.png, bench_<name>.json (what the page is rebuilt from)

A cell's run directory is named by a hash of its settings, so a finished cell is recognised and never run again,
an interrupted one resumes from its own cache and memoised trainings, and an edited arm gets a fresh directory.
Cells run one after the other here, or as Ray tasks across a cluster (`--ray`, `llmaug.distributed.grid`): then
the work folder must be one that every node sees at the same path, and the tables are the same.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from llmaug.bench.grid import SAMPLING, Cell, Grid, Resources, load_grid, substitute
from llmaug.bench.machine import machine_facts
from llmaug.bench.results import (
    CELL_FIELDS,
    ROUND_FIELDS,
    cell_row,
    is_finished,
    read_rows,
    round_rows,
    row_key,
    write_rows,
)
from llmaug.config import RunConfig, changed_settings, validate_config
from llmaug.data.bundled import resolve_dataset_folder
from llmaug.atomic import write_json_atomic
from llmaug.data.io import save_examples
from llmaug.errors import UserError

DEFAULT_RESULTS = Path("bench/results")


@dataclass(frozen=True)
class BenchPaths:
    results: Path
    work: Path
    name: str

    @property
    def csv(self) -> Path:
        return self.results / f"bench_{self.name}.csv"

    @property
    def rounds_csv(self) -> Path:
        return self.results / f"bench_{self.name}_rounds.csv"

    @property
    def markdown(self) -> Path:
        return self.results / f"bench_{self.name}.md"

    @property
    def meta(self) -> Path:
        return self.results / f"bench_{self.name}.json"

    def plot(self, dataset: str) -> Path:
        return self.results / f"bench_{self.name}_{slug(dataset)}.png"


@dataclass
class BenchOutcome:
    paths: BenchPaths
    ran: list[str] = field(default_factory=list)  # cells computed (or resumed) by this invocation
    reused: list[str] = field(default_factory=list)  # cells found finished
    failed: list[str] = field(default_factory=list)


def run_bench(
    grid_file: str | Path,
    *,
    work: str | Path | None = None,
    data_root: str | Path | None = None,
    results: str | Path = DEFAULT_RESULTS,
    console: Console | None = None,
    command: str | None = None,
    cells: CellRunner | None = None,
) -> BenchOutcome:
    """Run every cell of the grid that has not finished, then write the tables. `cells` computes them: one after
    the other here by default, or as Ray tasks (`llmaug.distributed.grid.RayCellRunner`, `llmaug bench --ray`);
    the tables are the same either way (they are written in grid order, whatever order cells finish in)."""
    grid = load_grid(grid_file, data_root)
    results = Path(results)
    paths = BenchPaths(results, Path(work) if work is not None else results / f"work-{grid.name}", grid.name)
    console = console or Console(stderr=True)
    runner = cells or SequentialCells()
    outcome = BenchOutcome(paths)
    meta = {"grid_file": str(grid_file), "command": command or f"llmaug bench {grid_file}", "work": str(paths.work),
            "started": _now(), "machine": machine_facts(), "grid": grid.model_dump(mode="json")}
    write_json_atomic(paths.meta, meta)  # an interrupted bench's page can still be rebuilt from its CSV
    with _grid_progress(console) as progress:
        _Schedule(grid, paths, data_root, runner, outcome, progress).run()
    meta.update(finished=_now(), failed=outcome.failed)
    write_json_atomic(paths.meta, meta)
    render(paths)
    return outcome


class _Schedule:
    """The grid's cells through a `CellRunner`: a cell is handed over once the arm it matches has finished
    (cells that match no arm at once), finished cells are read back instead of run, and each result is recorded
    (console line, CSV rewrite) as it arrives."""

    def __init__(self, grid: Grid, paths: BenchPaths, data_root, runner: CellRunner, outcome: BenchOutcome, progress):
        self.grid, self.paths, self.data_root, self.runner = grid, paths, data_root, runner
        self.outcome, self.progress = outcome, progress
        self.cells = grid.cells()
        self.previous = {row_key(row): row for row in read_rows(paths.csv)}
        self.previous_rounds = read_rows(paths.rounds_csv)
        self.rows: dict[tuple, dict] = {}
        self.rounds: dict[tuple, list[dict]] = {}
        self.unfinished = {cell.key for cell in self.cells}
        self.task = progress.add_task("cells", total=len(self.cells))

    def run(self) -> None:
        waiting = list(self.cells)
        self.runner.start(self.paths.work)
        try:
            while waiting or self.runner.running:
                ready = [cell for cell in waiting if not self._waits_for_another(cell)]
                for cell in ready:
                    waiting.remove(cell)
                    self._hand_over(cell)
                if self.runner.running:
                    self.runner.wait()
        finally:
            self.runner.close()
        _save_csvs(self.paths, self.cells, self.rows, self.rounds)

    def _waits_for_another(self, cell: Cell) -> bool:
        return cell.arm.matched is not None and cell.with_arm(cell.arm.matched[0]) in self.unfinished

    def _hand_over(self, cell: Cell) -> None:
        self.progress.update(self.task, description=cell.label())
        try:
            prepared = _prepare(cell, self.grid, self.paths, self.data_root, self.rows, self.previous,
                                self.previous_rounds)
        except UserError as err:
            self._failed(cell, err)
            return
        if isinstance(prepared, CellJob):
            self.runner.submit(prepared, self._computed)
        else:
            self._record(cell, *prepared, ran=False)

    def _computed(self, job: CellJob, result: CellDone | UserError) -> None:
        if isinstance(result, UserError):
            self._failed(job.cell, result)
            return
        row, cell_rounds = _rows(job.identity, Path(job.config.out), _seed_size(job.config), result.seconds,
                                 result.resumed)
        self._record(job.cell, row, cell_rounds, ran=True)

    def _record(self, cell: Cell, row: dict, cell_rounds: list[dict], ran: bool) -> None:
        self.rows[cell.key], self.rounds[cell.key] = row, cell_rounds
        (self.outcome.ran if ran else self.outcome.reused).append(cell.label())
        self.progress.console.print(_cell_line(cell, row, ran), highlight=False, soft_wrap=True)
        _save_csvs(self.paths, self.cells, self.rows, self.rounds)
        self._done(cell)

    def _failed(self, cell: Cell, err: UserError) -> None:
        self.outcome.failed.append(f"{cell.label()}: {err}")
        self.progress.console.print(f"[red]failed[/red] {cell.label()}: {err}", highlight=False, soft_wrap=True)
        self._done(cell)

    def _done(self, cell: Cell) -> None:
        self.unfinished.discard(cell.key)
        self.progress.advance(self.task)


# ----- computing cells -----


@dataclass(frozen=True)
class CellJob:
    """A cell to compute: its `llmaug run` settings (`config.out` is its run directory) and what it reserves."""

    cell: Cell
    config: RunConfig
    identity: dict
    work: Path
    resources: Resources


@dataclass(frozen=True)
class CellDone:
    seconds: float
    resumed: bool  # the run directory held an interrupted run of this cell


class CellRunner(Protocol):
    """Computes cells: `SequentialCells` one after the other in this process, `RayCellRunner` as Ray tasks.
    `submit` hands a cell over; `done(job, CellDone | UserError)` is called when it has finished, from `submit`
    itself or from `wait`, which blocks until at least one cell has finished. `running` counts cells handed over
    and not finished."""

    running: int

    def start(self, work: Path) -> None: ...

    def submit(self, job: CellJob, done: Callable[[CellJob, CellDone | UserError], None]) -> None: ...

    def wait(self) -> None: ...

    def close(self) -> None: ...


class SequentialCells:
    """Each cell computed in this process as soon as it is handed over (the bench without --ray)."""

    running = 0

    def start(self, work: Path) -> None:
        return None

    def submit(self, job: CellJob, done: Callable[[CellJob, CellDone | UserError], None]) -> None:
        try:
            result = run_cell(job)
        except UserError as err:
            done(job, err)
            return
        done(job, result)

    def wait(self) -> None:
        return None

    def close(self) -> None:
        return None


def run_cell(job: CellJob) -> CellDone:
    """Compute one cell, wherever it runs: `llmaug run` with the cell's settings, resuming what is in its run
    directory, its console output in the cell's log."""
    from llmaug.session import start_run

    config = job.config
    run_dir = Path(config.out)
    resumed = run_dir.is_dir() and any(run_dir.iterdir())
    if config.teacher.startswith("pool:"):
        _write_pool_exclusions(config)
    log = cell_log(job)
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log.open("a", encoding="utf-8") as handle:
        start_run(config, Console(file=handle, width=120, no_color=True))
    return CellDone(time.perf_counter() - started, resumed)


def cell_log(job: CellJob) -> Path:
    return job.work / "logs" / f"{slug(job.cell.dataset.name)}--{slug(job.cell.arm.name)}--{Path(job.config.out).name}.log"


def render(paths: BenchPaths) -> None:
    """Rebuild the grid's Markdown page and plots from its CSV files and bench_<name>.json."""
    from llmaug.bench.plots import plot_dataset
    from llmaug.bench.table import markdown

    meta = json.loads(paths.meta.read_text(encoding="utf-8"))
    grid = Grid.model_validate(meta["grid"])
    rows, round_table = read_rows(paths.csv), read_rows(paths.rounds_csv)
    plots = {}
    for dataset in grid.datasets:
        image = paths.plot(dataset.name)
        if plot_dataset(grid, dataset.name, round_table, image):
            plots[dataset.name] = image.name
    paths.markdown.write_text(markdown(grid, rows, meta, plots), encoding="utf-8")


# ----- one cell -----


def _prepare(cell: Cell, grid: Grid, paths: BenchPaths, data_root, finished: dict, previous: dict,
             previous_rounds: list[dict]) -> CellJob | tuple[dict, list[dict]]:
    """A finished cell's (CSV row, round rows), from the CSV or its run directory; else the job that computes it."""
    config = cell_config(cell, grid, paths.work, data_root, _matched_value(cell, finished))
    identity = _identity(cell, config, config_hash(config, paths.work, data_root))
    key = row_key(identity)
    if key in previous and is_finished(Path(previous[key]["run_dir"])):
        return previous[key], [r for r in previous_rounds if row_key(r) == key]
    run_dir = Path(config.out)
    if is_finished(run_dir):
        return _rows(identity, run_dir, _seed_size(config), _recorded_seconds(run_dir), resumed=False)
    return CellJob(cell, config, identity, paths.work, cell.arm.resources or grid.resources)


def _rows(identity: dict, run_dir: Path, seed_size: int, seconds: float, resumed: bool) -> tuple[dict, list[dict]]:
    return cell_row(identity, run_dir, seed_size, seconds, resumed), round_rows(identity, run_dir)


def cell_config(cell: Cell, grid: Grid, work: Path, data_root, matched: int | None) -> RunConfig:
    """The `llmaug run` settings of a cell: grid defaults < setting < arm, then what the bench manages."""
    folder = resolve_dataset_folder(cell.dataset.source)
    names = {"dataset_path": str(folder), "data_root": str(data_root) if data_root is not None else "{data_root}"}
    values = substitute(dict(grid.defaults), names)
    values.update(cell.setting.sampling())
    arm_settings = substitute(cell.arm.run_settings, names)
    if any(key in arm_settings for key in SAMPLING):  # the arm's own sampling replaces the setting's whole
        values.update(dict.fromkeys(SAMPLING))
    values.update(arm_settings)
    values.update(method=cell.arm.method, dataset=cell.dataset.source, seed=cell.seed)
    if cell.arm.pool_mode is not None:
        _use_pool(values, cell, work)
    if matched is not None:
        _match_budget(values, matched)
    values["out"] = None
    config = validate_config({k: v for k, v in values.items() if v is not None}, f"grid {grid.name}, arm {cell.arm.name}")
    folder_name = f"{_sampling_tag(config)}-s{cell.seed}-{config_hash(config, work, data_root)}"
    return config.model_copy(update={"out": str(work / slug(cell.dataset.name) / slug(cell.arm.name) / folder_name)})


def _use_pool(values: dict, cell: Cell, work: Path) -> None:
    """The oracle pool of the cell's own dataset, never handing out its seed rows; no cache (see teachers.pool)."""
    values["teacher"] = f"pool:{cell.dataset.source}:{cell.arm.pool_mode}"
    values["cache"] = False
    sampling = "-".join(f"{k}{values[k]}" for k in SAMPLING if values.get(k) is not None)
    options = dict(values.get("teacher_options") or {})
    options.update(exclude=str(work / "seeds" / slug(cell.dataset.name) / f"{slug(sampling)}-s{cell.seed}.jsonl"),
                   embeddings_cache=str(work / "embeddings"), seed=cell.seed)
    values["teacher_options"] = options


def _match_budget(values: dict, matched: int) -> None:
    values["max_teacher_calls"] = matched
    if values["method"] in ("paraphrase", "zerogen"):  # spread exactly that many calls, not just cap them
        values["method_options"] = {**(values.get("method_options") or {}), "total": matched}


def _matched_value(cell: Cell, finished: dict) -> int | None:
    if cell.arm.matched is None:
        return None
    arm, what = cell.arm.matched
    row = finished.get(cell.with_arm(arm))
    if row is None:
        raise UserError(f"arm {arm!r}, whose {what} this arm matches, did not finish for this cell", "grid")
    return int(float(row["teacher_calls" if what == "calls" else "added"]))


def _write_pool_exclusions(config: RunConfig) -> None:
    from llmaug.session import load_run_data

    path = Path(config.teacher_options["exclude"])
    if not path.is_file():
        seed, _ = load_run_data(config)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_examples(seed, path)


def config_hash(config: RunConfig, work: Path, data_root) -> str:
    """A short hash of a cell's settings, the same wherever the work folder and the data root are. Settings left
    at their defaults are not in it, so a new `llmaug run` setting does not make finished cells look new."""
    settings = {key: value for key, value in changed_settings(config).items() if key not in ("out", "ray")}
    text = json.dumps(settings, sort_keys=True)
    text = text.replace(str(work), "{work}")
    if data_root is not None:
        text = text.replace(str(data_root), "{data_root}")
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _identity(cell: Cell, config: RunConfig, digest: str) -> dict:
    teacher = f"pool:{cell.arm.pool_mode}" if cell.arm.pool_mode else "–" if config.method == "none" else config.teacher
    return {"dataset": cell.dataset.name, "setting": cell.setting.name, "seed": cell.seed, "arm": cell.arm.name,
            "method": config.method, "oracle": cell.arm.is_oracle, "teacher": teacher, "student": config.student,
            "config_hash": digest}


def _seed_size(config: RunConfig) -> int:
    from llmaug.session import load_run_data

    return len(load_run_data(config)[0])


def _recorded_seconds(run_dir: Path) -> float:
    return float(json.loads((run_dir / "summary.json").read_text(encoding="utf-8")).get("seconds") or 0.0)


def _sampling_tag(config: RunConfig) -> str:
    return f"{config.per_class}pc" if config.per_class else f"frac{config.fraction:g}"


def _save_csvs(paths: BenchPaths, cells: list[Cell], rows: dict, rounds: dict) -> None:
    ordered = [cell.key for cell in cells if cell.key in rows]
    write_rows(paths.csv, [rows[key] for key in ordered], CELL_FIELDS)
    write_rows(paths.rounds_csv, [r for key in ordered for r in rounds[key]], ROUND_FIELDS)


def _cell_line(cell: Cell, row: dict, ran: bool) -> str:
    accuracy = f"{float(row['test_accuracy']):.3f}" if row["test_accuracy"] else "-"
    status = "[green]done[/green]" if ran else "[dim]finished earlier[/dim]"
    return (f"{status} {cell.label()}: accuracy {accuracy}, teacher calls {row['teacher_calls']}, added {row['added']}, "
            f"{float(row['wall_seconds']):.1f} s")


def _grid_progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False, disable=not console.is_terminal)


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", name.replace("%", "pct")).strip("_") or "_"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
