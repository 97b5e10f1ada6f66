"""`dialogforge runs` (with each run's share of the store), `runs show|calls RUN`, `runs prune RUN`."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..engine import DialogforgeError, RunStore
from ..engine.store import default_store_path
from .common import StoreOpt, friendly_errors
from .common import escape as esc

RunArg = typer.Argument(None, help="Run id, a unique prefix or an output file of the run (default: the newest run).")
out = Console() if sys.stdout.isatty() else Console(width=200)  # piped: don't fold rows at 80 columns


def _open(ctx: typer.Context, store: Optional[Path]) -> RunStore:
    """The run store named by --store (after the subcommand or before it), or the default one. Reading
    never creates one: a mistyped path is an error, not a new empty store."""
    if store is None and ctx.parent is not None:
        store = ctx.parent.params.get("store")
    path = Path(store) if store else default_store_path()
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):  # a folder: RunStore says so
        raise DialogforgeError(f"no run store at {path} (nothing has run with this store yet; "
                               f"--store names another, $DIALOGFORGE_HOME moves the default)")
    return RunStore(path)


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def _pruned_note(pruned: dict) -> str:
    return (f"request bodies pruned on {_when(pruned['at'])}: {pruned['requests']:,} request bodies and "
            f"{pruned['failed']:,} failed attempts dropped ({_size(pruned['bytes'])} uncompressed); responses, memos and "
            "recorded lines kept")


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _batch_jobs(st: RunStore, run_id: str) -> None:
    """The provider batch jobs of a batch-mode run: state, requests and cost at batch prices."""
    from ..engine.executors.batch_api import jobs
    js = jobs(st, run_id)
    if not js:
        return
    t = Table(title="batch jobs (costed at batch prices)")
    for col in ("round", "batch", "endpoint", "status", "requests", "answered", "failed", "tokens", "cost"):
        t.add_column(col, justify="right" if col in ("round", "requests", "answered", "failed", "tokens", "cost")
                     else "left", no_wrap=True)
    for j in js:
        t.add_row(str(j["round"]), j["batch_id"], j["endpoint"], j["status"], str(j["requests"]), str(j["completed"]),
                  str(j["failed"]), f"{j['prompt_tokens'] + j['completion_tokens']:,}", f"${j['cost']:.4f}")
    out.print(t)
    out.print(f"batch total: ${sum(j['cost'] for j in js):.4f} over {len(js)} job(s)", highlight=False)


def _find(st: RunStore, run: Optional[str]) -> Any:
    if run is None:
        runs = st.runs()
        if not runs:
            raise DialogforgeError(f"no runs in {st.path} yet")
        return runs[0]
    info = st.find_run(run)
    if info is None:
        raise DialogforgeError(f"no run {run!r} in {st.path} (see `dialogforge runs`)")
    return info


def register(app: typer.Typer) -> None:
    runs_app = typer.Typer(help="Runs recorded in the run store.", invoke_without_command=True, no_args_is_help=False)
    app.add_typer(runs_app, name="runs")

    @runs_app.callback()
    @friendly_errors
    def runs_list(ctx: typer.Context, store: Optional[Path] = StoreOpt,
                  exact_sizes: bool = typer.Option(False, "--exact-sizes",
                                                   help="Walk every page of the store for each run's exact share "
                                                        "(slow on a big store; by default the shares are "
                                                        "estimated from counters)."),
                  ) -> None:
        """List runs, newest first, with each run's share of the store file."""
        if ctx.invoked_subcommand:
            if exact_sizes:  # the listing's flag: `show`, `calls` and `prune` would ignore it
                raise DialogforgeError(f"--exact-sizes goes with the listing (`dialogforge runs --exact-sizes`), "
                                       f"not with `runs {ctx.invoked_subcommand}`")
            return
        st = _open(ctx, store)
        shares = st.shares(exact_sizes=exact_sizes)
        table = Table(title=f"runs in {st.path}")
        table.add_column("run", no_wrap=True)
        for col in ("workflow", "status", "done", "failed", "updated"):
            table.add_column(col, no_wrap=True)
        table.add_column("store (approx.)" if shares.approx else "store", justify="right", no_wrap=True)
        table.add_column("share", justify="right", no_wrap=True)
        table.add_column("output", overflow="fold")
        for r in st.runs():
            status = f"{r.status} (pruned)" if r.info.get("pruned") else r.status
            table.add_row(r.run_id, r.name, status, str(r.done), str(r.failed), _when(r.updated_at),
                          _size(shares.runs.get(r.run_id, 0)), f"{shares.percent(r.run_id):.1f}%",
                          next(iter(r.outputs.values()), ""))
        out.print(table)
        other = shares.other
        own = max(0, other - shares.free_bytes)
        how = ("approx., from counters; --exact-sizes walks the file" if shares.approx
               else "exact, walked page by page")
        out.print(f"store {_size(shares.file_bytes)} (+ WAL {_size(shares.wal_bytes)}): runs "
                  f"{_size(shares.file_bytes - other)} ({how}), not owned by any run {_size(other)} "
                  f"({100 * other / max(1, shares.file_bytes):.1f}%: free pages {_size(shares.free_bytes)}, "
                  f"the store's own {_size(own)})", highlight=False)

    @runs_app.command("show")
    @friendly_errors
    def runs_show(ctx: typer.Context, run: Optional[str] = RunArg, store: Optional[Path] = StoreOpt) -> None:
        """Summarise one run: calls, tokens, cost and latency per purpose; errors; failed items."""
        st = _open(ctx, store)
        info = _find(st, run)
        s = st.run_summary(info.run_id)
        out.print(f"[bold]{info.run_id}[/] · {info.name} · {info.status} · {info.done} done, {info.failed} failed")
        out.print(f"command: {esc(str(info.command))}", highlight=False)
        for k, v in info.outputs.items():
            out.print(f"output {k}: {esc(str(v))}", highlight=False)
        if s["pruned"]:
            out.print(_pruned_note(s["pruned"]), highlight=False)
        if info.error:  # a crashed run: the traceback the user was pointed to
            out.print("[red]stopped by an error that is not an item's:[/]")
            out.print(info.error.rstrip(), highlight=False, markup=False)
        t = Table(title="calls by purpose")
        for col in ("purpose", "calls", "errors", "prompt tok", "completion tok", "cost", "mean latency"):
            t.add_column(col, justify="right" if col != "purpose" else "left")
        for p in s["by_purpose"]:
            t.add_row(p["purpose"], str(p["calls"]), str(p["errors"]), f"{p['prompt_tokens']:,}",
                      f"{p['completion_tokens']:,}", f"${p['cost']:.4f}", f"{p['mean_latency']:.3f}s")
        out.print(t)
        _batch_jobs(st, info.run_id)
        if s["call_errors"]:
            t = Table(title="call errors (retried or final)")
            t.add_column("error")
            t.add_column("count", justify="right")
            for e in s["call_errors"]:
                t.add_row(e["error"], str(e["count"]))
            out.print(t)
        if s["failures"]:
            t = Table(title="failed items")
            t.add_column("item")
            t.add_column("reason")
            for item_id, err in s["failures"][:50]:
                t.add_row(item_id, err)
            out.print(t)

    @runs_app.command("calls")
    @friendly_errors
    def runs_calls(ctx: typer.Context, run: Optional[str] = RunArg,
                   item: Optional[str] = typer.Option(None, "--item", help="Only this item's calls."),
                   purpose: Optional[str] = typer.Option(None, "--purpose", help="Only calls of this purpose."),
                   output: Optional[Path] = typer.Option(None, "--output", "-o",
                                                         help="Write every call (request and response) to this "
                                                              "file: JSONL, or Parquet for a .parquet name."),
                   fmt: Optional[str] = typer.Option(None, "--format", help="jsonl or parquet (default: from the "
                                                                            "--output name's suffix)."),
                   store: Optional[Path] = StoreOpt) -> None:
        """Every model call of a run, in order: a table, or the full requests and responses as JSONL or Parquet."""
        kind = _calls_format(fmt, output)
        st = _open(ctx, store)
        info = _find(st, run)
        for what, given in (("item", item), ("purpose", purpose)):
            if given is not None and not st.has_calls(info.run_id, **{"item_id" if what == "item" else what: given}):
                raise DialogforgeError(f"--{what} {given!r}: run {info.run_id} made no call "
                                       f"{'for' if what == 'item' else 'of'} it (see `dialogforge runs show`)"
                                       "; nothing written")
        if item is not None and purpose is not None and not st.has_calls(info.run_id, item, purpose):
            raise DialogforgeError(f"run {info.run_id} made no {purpose!r} call for item {item!r}; nothing written")
        pruned = st.pruned(info.run_id)
        if pruned:
            out.print(f"note: {_pruned_note(pruned)}; their `request` is null", highlight=False)
        calls = (c for c in st.calls(info.run_id, item, raw=kind == "parquet")
                 if purpose is None or c["purpose"] == purpose)
        if output is not None:
            from .calls_file import write_calls_jsonl, write_calls_parquet
            n = (write_calls_parquet if kind == "parquet" else write_calls_jsonl)(calls, output)
            out.print(f"{n} calls written to {esc(str(output))} ({kind})", highlight=False)
            return
        t = Table(title=f"calls of {info.run_id}")
        for col in ("id", "item", "purpose", "model", "tokens in/out", "latency", "attempt", "result"):
            t.add_column(col, overflow="fold")
        for c in calls:
            resp = c["response"] or {}
            text = ((resp.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
            result = f"[red]{esc(c['error'])}[/]" if c["error"] else esc(text.replace("\n", " ")[:60])
            t.add_row(str(c["id"]), c["item_id"] or "", c["purpose"], c["model"] or "",
                      f"{c['prompt_tokens'] or 0}/{c['completion_tokens'] or 0}", f"{c['latency'] or 0:.2f}s",
                      str(c["attempt"]), result)
        out.print(t)

    @runs_app.command("prune")
    @friendly_errors
    def runs_prune(ctx: typer.Context, run: str = typer.Argument(..., help="A finished run: its id, a unique "
                                                                         "prefix or one of its output files."),
                   dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be freed; change nothing."),
                   store: Optional[Path] = StoreOpt) -> None:
        """Drop a finished run's request bodies and failed attempts, then VACUUM the file.

        Kept: what resuming, rebuilding its outputs and every run's cache need (responses, memos, recorded lines)."""
        st = _open(ctx, store)
        plan = st.prune(run, dry_run=dry_run)
        what = (f"{plan.requests:,} request bodies and {plan.failed:,} failed attempts "
                f"({_size(plan.bytes)} uncompressed, about {_size(plan.stored)} compressed as stored)")
        if dry_run:
            out.print(f"{plan.run_id}: would drop {what}; nothing changed (dry run)", highlight=False)
            return
        did = f"dropped {what}" if plan.requests or plan.failed else "nothing left to drop"
        if plan.file_after is not None:
            out.print(f"{plan.run_id}: {did}; store file {_size(plan.file_before)} -> {_size(plan.file_after)} "
                      f"(VACUUM), {_size(plan.file_before - plan.file_after)} freed", highlight=False)
        elif plan.not_vacuumed:
            out.print(f"{plan.run_id}: {did}; the file was not vacuumed: {esc(plan.not_vacuumed)}; later runs reuse "
                      "the space, and `runs prune` again when it is free shrinks the file", highlight=False)
        else:
            out.print(f"{plan.run_id}: {did}", highlight=False)


def _calls_format(fmt: Optional[str], output: Optional[Path]) -> str:
    if fmt is not None and fmt not in ("jsonl", "parquet"):
        raise DialogforgeError(f"--format {fmt!r}: use jsonl or parquet")
    if fmt is not None and output is None:
        raise DialogforgeError(f"--format {fmt} needs --output FILE")
    return fmt or ("parquet" if output is not None and output.suffix.lower() == ".parquet" else "jsonl")
