"""Progress on a terminal's stderr: a spinner while a plan is read, one line per table while apply runs.

The CLI passes a console only when stderr is a terminal and the output is not JSON; these never print elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console

from mlflow_ws_admin.engine.import_plan import ImportPlan
from mlflow_ws_admin.engine.plan import Plan


@contextmanager
def planning_spinner(console: Console | None) -> Iterator[Callable[[str], None] | None]:
    """A spinner naming the table being read (a dry run of a large database takes a while)."""
    if console is None:
        yield None
        return
    from rich.text import Text

    with console.status(Text("Reading the schema")) as status:
        yield lambda table: status.update(Text(f"Checking {table}"))


@contextmanager
def apply_progress(plan: Plan, console: Console | None) -> Iterator[Callable[[str, int, float], None] | None]:
    """One line per table that moves rows: its rows and the seconds since the previous table finished (the
    first also waits for the locks and the checks before the first UPDATE).  The table being updated spins."""
    if console is None:
        yield None
        return
    from rich.progress import Progress, ProgressColumn, SpinnerColumn, Task, TextColumn
    from rich.text import Text

    class Seconds(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text("" if task.elapsed is None else f"{task.elapsed:.1f} s", style="progress.elapsed")

    columns = (SpinnerColumn(finished_text="✓"), TextColumn("{task.description}", markup=False))
    columns += (TextColumn("{task.fields[rows]}", justify="right", markup=False), Seconds())
    with Progress(*columns, console=console) as progress:
        pending = [
            progress.add_task(m.table, total=1, start=False, rows=f"{m.rows_to_move:,} rows")
            for m in plan.moves
            if m.rows_to_move
        ]
        pending.append(progress.add_task("verify and commit", total=1, start=False, rows=""))
        progress.start_task(pending[0])
        by_table = dict(zip((m.table for m in plan.moves if m.rows_to_move), pending, strict=False))

        def moved(table: str, rows: int, _elapsed: float) -> None:
            task = by_table.get(table)
            if task is None or task not in pending:
                return  # nothing to move there
            progress.update(task, completed=1, rows=f"{rows:,} rows")
            progress.stop_task(task)
            pending.remove(task)
            progress.start_task(pending[0])

        yield moved
        progress.update(pending[-1], completed=1)
        progress.stop_task(pending[-1])


@contextmanager
def import_progress(plan: ImportPlan, console: Console | None) -> Iterator[Callable[[str, int], None] | None]:
    """``db import-database``: a bar per table, advanced batch by batch."""
    if console is None:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        tasks = {t.table: progress.add_task(t.table, total=t.rows) for t in plan.tables if t.rows}

        def copied(table: str, rows: int) -> None:
            if table in tasks:
                progress.update(tasks[table], completed=rows)

        yield copied
