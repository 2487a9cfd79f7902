"""`llmaug bench GRID.yaml`: every cell of a grid run as an `llmaug run`, resumable, with a progress display.

    <work>/<dataset>/<arm>/<sampling>-s<seed>-<config hash>/   one run directory per cell (cache, rounds, summary)
    <work>/seeds/...          the seed rows an oracle pool must not hand out
    <work>/logs/...           each cell's console output
    <results>/bench_<name>.csv           one row per finished cell
    <results>/bench_<name>_rounds.csv    one row per round of each cell (the plots)
    <results>/bench_<name>.md, bench_<name>_<dataset>.png, bench_<name>.json (what the page is rebuilt from)

A cell's run directory is named by a hash of its settings, so a finished cell is recognised and never run again,
an interrupted one resumes from its own cache and memoised trainings, and an edited arm gets a fresh directory.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from llmaug.bench.grid import SAMPLING, Cell, Grid, load_grid, substitute
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
) -> BenchOutcome:
    grid = load_grid(grid_file, data_root)
    results = Path(results)
    paths = BenchPaths(results, Path(work) if work is not None else results / f"work-{grid.name}", grid.name)
    console = console or Console(stderr=True)
    cells = grid.cells()
    outcome = BenchOutcome(paths)
    previous = {row_key(row): row for row in read_rows(paths.csv)}
    previous_rounds = read_rows(paths.rounds_csv)
    rows: dict[tuple, dict] = {}
    rounds: dict[tuple, list[dict]] = {}
    meta = {"grid_file": str(grid_file), "command": command or f"llmaug bench {grid_file}", "work": str(paths.work),
            "started": _now(), "machine": machine_facts(), "grid": grid.model_dump(mode="json")}
    write_json_atomic(paths.meta, meta)  # an interrupted bench's page can still be rebuilt from its CSV
    with _grid_progress(console) as progress:
        task = progress.add_task("cells", total=len(cells))
        for cell in cells:
            progress.update(task, description=cell.label())
            try:
                row, cell_rounds, ran = _cell(cell, grid, paths, data_root, rows, previous, previous_rounds)
            except UserError as err:
                outcome.failed.append(f"{cell.label()}: {err}")
                progress.console.print(f"[red]failed[/red] {cell.label()}: {err}", highlight=False, soft_wrap=True)
                progress.advance(task)
                continue
            rows[cell.key], rounds[cell.key] = row, cell_rounds
            (outcome.ran if ran else outcome.reused).append(cell.label())
            progress.console.print(_cell_line(cell, row, ran), highlight=False, soft_wrap=True)
            _save_csvs(paths, cells, rows, rounds)
            progress.advance(task)
    _save_csvs(paths, cells, rows, rounds)
    meta.update(finished=_now(), failed=outcome.failed)
    write_json_atomic(paths.meta, meta)
    render(paths)
    return outcome


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


def _cell(cell: Cell, grid: Grid, paths: BenchPaths, data_root, finished: dict, previous: dict, previous_rounds: list[dict]):
    """(CSV row, round rows, whether it was computed now) of a cell: from the CSV, its run directory, or a run."""
    config = cell_config(cell, grid, paths.work, data_root, _matched_value(cell, finished))
    identity = _identity(cell, config, config_hash(config, paths.work, data_root))
    key = row_key(identity)
    if key in previous and is_finished(Path(previous[key]["run_dir"])):
        return previous[key], [r for r in previous_rounds if row_key(r) == key], False
    run_dir = Path(config.out)
    if is_finished(run_dir):
        return (*_rows(identity, run_dir, _seed_size(config), _recorded_seconds(run_dir), resumed=False), False)
    resumed = run_dir.is_dir() and any(run_dir.iterdir())
    seconds = _execute(cell, config, paths.work)
    return (*_rows(identity, run_dir, _seed_size(config), seconds, resumed), True)


def _rows(identity: dict, run_dir: Path, seed_size: int, seconds: float, resumed: bool) -> tuple[dict, list[dict]]:
    return cell_row(identity, run_dir, seed_size, seconds, resumed), round_rows(identity, run_dir)


def _execute(cell: Cell, config: RunConfig, work: Path) -> float:
    from llmaug.session import start_run

    if config.teacher.startswith("pool:"):
        _write_pool_exclusions(config)
    log = work / "logs" / f"{slug(cell.dataset.name)}--{slug(cell.arm.name)}--{Path(config.out).name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log.open("a", encoding="utf-8") as handle:
        start_run(config, Console(file=handle, width=120, no_color=True))
    return time.perf_counter() - started


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
    settings = {key: value for key, value in changed_settings(config).items() if key != "out"}
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
