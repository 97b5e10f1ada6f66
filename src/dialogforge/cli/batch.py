"""`dialogforge batch import OUTPUT`: answers from an offline batch run (vLLM's run-batch) into the run store.

The other half is `--batch-file FILE` on generate and persona run: the run goes until every unfinished
item waits on an uncached call, writes those calls to FILE in the OpenAI batch form that
`vllm run-batch` reads, and stops. Import the output, rerun the same command: it goes one round further.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import StoreOpt, console, friendly_errors, require_rows


def register(app: typer.Typer) -> None:
    batch_app = typer.Typer(help="Offline batch rounds (--batch-file) through your own GPU box.", no_args_is_help=True)
    app.add_typer(batch_app, name="batch")

    @batch_app.command("import")
    @friendly_errors
    def import_cmd(
        output: Path = typer.Argument(..., help="The output JSONL of `vllm run-batch` (or a provider's batch output)."),
        store: Optional[Path] = StoreOpt,
    ) -> None:
        """Load a batch output into the run store; then rerun the command that wrote the --batch-file."""
        from ..engine import DialogforgeError, RunStore
        from ..engine.executors.offline import import_output
        from ..engine.store import default_store_path
        if output.is_dir():
            raise DialogforgeError(f"{output}: is a folder, not a file")
        require_rows(output)
        path = Path(store) if store else default_store_path()
        if not path.is_file():  # the answers belong to calls a --batch-file run logged there: never a new store
            raise DialogforgeError(f"no run store at {path} (import into the store of the run that wrote the "
                                   "--batch-file: --store, or $DIALOGFORGE_HOME)")
        st = RunStore(path)
        res = import_output(st, output)
        st.close()
        msg = f"[green]imported[/] {res.answered} answer(s) for run(s) {', '.join(sorted(res.runs)) or '-'}"
        if res.failed:
            msg += f"; [yellow]{res.failed} failed[/] (they go into the next batch file)"
        console.print(msg + "; rerun the same command to go one round further", highlight=False)
