"""`dialogforge annotate ...`: the annotation server and the reward data made from its labels."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from .common import (BaseUrlOpt, ConfigOpt, ContinueOpt, KeyEnvOpt, ModelOpt, StoreOpt, console, friendly_errors,
                     escape, make_engine, print_result, run_async)

DbOpt = typer.Option(None, "--db", help="Database URL: SQLite, or PostgreSQL as postgresql+psycopg:// URL. "
                                       "Default: PROJECT/annotate.sqlite, or $DIALOGFORGE_ANNOTATE_DB.")


def _error(message: str) -> Exception:
    from ..engine.errors import DialogforgeError
    return DialogforgeError(message)


_EXTRA = ("fastapi", "uvicorn", "sqlalchemy", "argon2", "multipart", "python_multipart", "krippendorff", "psycopg",
          "starlette")


def needs_extra(fn: Callable) -> Callable:
    """A command of the annotation server run without its packages: one line with the install hint."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ImportError as e:
            if (e.name or "").split(".")[0] not in _EXTRA:
                raise
            raise _error(f"the annotation server needs extra packages ({e.name}): "
                         "pip install 'dialogforge[annotate]'") from None
    return wrapper


def _open(project: Path, db: Optional[str], create: bool = True, **settings: Any) -> Any:
    from ..annotate.project import Settings, open_project
    proj = open_project(project, db, Settings(**{k: v for k, v in settings.items() if v is not None}), create=create)
    if proj.new_admin_password:
        console.print(f"[bold]created the admin account[/]: user [bold]admin[/], password "
                      f"[bold]{proj.new_admin_password}[/] — shown this once; store it now "
                      f"(`dialogforge annotate reset-password {project} admin` makes a new one)", highlight=False,
                      soft_wrap=True)
    return proj


def register(app: typer.Typer) -> None:
    ann = typer.Typer(help="Annotation server: people judge proactive proposals; their labels become reward data.",
                      no_args_is_help=True)
    app.add_typer(ann, name="annotate")

    @ann.command("import")
    @friendly_errors
    @needs_extra
    def import_cmd(
        project: Path = typer.Argument(..., help="Project folder (created on first use)."),
        files: list[Path] = typer.Argument(..., help="ProactiveBench test traces (.json), trace files (.jsonl), "
                                                     "or folders of them (e.g. `proactive simulate`'s traces_test/)."),
        ask_every: int = typer.Option(1, "--ask-every", min=1, help="For traces without candidates: ask the help "
                                                             "question at every Nth turn (and the last)."),
        db: Optional[str] = DbOpt,
    ) -> None:
        """Import traces. Importing the same trace again changes nothing."""
        from ..annotate.importer import import_parsed, parse_files
        parsed = parse_files(files)  # every file readable, or nothing is created (not even the project)
        proj = _open(project, db)
        try:
            rep = import_parsed(proj, parsed, ask_every=ask_every)
        finally:
            proj.close()
        console.print(f"[green]imported[/] {rep.added} new trace(s), {rep.unchanged} already present, "
                      f"from {len(rep.files)} file(s)", highlight=False)

    @ann.command("serve")
    @friendly_errors
    @needs_extra
    def serve_cmd(
        project: Path = typer.Argument(..., help="Project folder."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind. Anything but loopback exposes "
                                                             "the server to the network (a warning is shown)."),
        port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port to listen on."),
        allowed_host: list[str] = typer.Option([], "--allowed-host", help="Extra Host name to accept "
                                                                          "(DNS-rebinding guard); repeatable."),
        annotators: int = typer.Option(3, "--annotators", "-N", min=1, help="Annotators per trace."),
        lease_minutes: float = typer.Option(30.0, "--lease-minutes", min=0.05,
                                            help="An abandoned trace returns to the pool after this long."),
        secure_cookies: bool = typer.Option(False, "--secure-cookies", help="Mark cookies Secure (behind HTTPS)."),
        db: Optional[str] = DbOpt,
    ) -> None:
        """Run the annotation web app (127.0.0.1:8765 by default)."""
        from ..annotate.server import check_listen, serve, warnings_for
        check_listen(host, port)  # a port in use or an unknown host: one line, before the project is opened
        proj = _open(project, db, annotators=annotators, lease_minutes=lease_minutes)
        for w in warnings_for(host, allowed_host):
            console.print(f"[bold yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
        try:
            serve(proj, host, port, allowed_host, secure_cookies, lambda m: console.print(m, highlight=False))
        finally:
            proj.close()

    @ann.command("invite")
    @friendly_errors
    @needs_extra
    def invite_cmd(
        project: Path = typer.Argument(..., help="Project folder."),
        username: str = typer.Argument(..., help="The annotator's user name."),
        base_url: str = typer.Option("http://127.0.0.1:8765", "--base-url", help="Where the server is reached."),
        db: Optional[str] = DbOpt,
    ) -> None:
        """Create an annotator and print their one-time invitation link."""
        from ..annotate import auth
        try:
            auth.check_username(username)
        except ValueError as e:
            raise _error(str(e)) from None
        if not base_url.startswith(("http://", "https://")):
            raise _error(f"--base-url {base_url!r}: give the server's address as http(s)://HOST[:PORT]")
        proj = _open(project, db, create=False)
        try:
            with proj.Session.begin() as s:
                token = auth.create_invite(s, proj.secret, username)
        except ValueError as e:
            raise _error(str(e)) from None
        finally:
            proj.close()
        print(f"{base_url.rstrip('/')}/invite/{token}")

    @ann.command("reset-password")
    @friendly_errors
    @needs_extra
    def reset_cmd(project: Path = typer.Argument(..., help="Project folder."),
                  username: str = typer.Argument("admin", help="Whose password."),
                  db: Optional[str] = DbOpt) -> None:
        """Give a user a new generated password (printed once) and end their sessions."""
        from ..annotate.accounts import reset_password
        proj = _open(project, db, create=False)
        try:
            pw = reset_password(proj, username)
        finally:
            proj.close()
        console.print(f"new password for [bold]{username}[/]: [bold]{pw}[/] (shown once)", highlight=False)

    @ann.command("export")
    @friendly_errors
    @needs_extra
    def export_cmd(
        project: Path = typer.Argument(..., help="Project folder."),
        out: Path = typer.Option(..., "--out", "-o", help="Folder for train.jsonl, test.jsonl, report.json."),
        test_size: float = typer.Option(0.2, "--test-size", help="Share of items in test (whole traces move)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the split."),
        min_annotators: int = typer.Option(3, "--min-annotators", min=1,
                                           help="Only traces finished by at least this many annotators."),
        db: Optional[str] = DbOpt,
    ) -> None:
        """Majority labels -> reward items (ProactiveBench reward_data form), split by trace, stratified."""
        from ..annotate.export import export
        if not 0 <= test_size < 1:
            raise _error(f"--test-size must be in [0, 1), got {test_size}")
        proj = _open(project, db, create=False)
        try:
            rep = export(proj.Session, out, test_size=test_size, seed=seed, min_annotators=min_annotators)
        finally:
            proj.close()
        cats = ", ".join(f"{k} {v}" for k, v in sorted(rep.items.items())) or "no items"
        console.print(f"[green]exported[/] {sum(rep.items.values())} items ({cats}) from {rep.traces_used} "
                      f"trace(s) to {escape(str(out))}; ties left out: {sum(rep.ties.values())}; traces not yet complete: "
                      f"{rep.traces_incomplete}; train {rep.split['train']['items']} / test "
                      f"{rep.split['test']['items']} items", highlight=False, soft_wrap=True)

    @ann.command("rm-trainset")
    @friendly_errors
    def rm_trainset_cmd(
        items: list[Path] = typer.Argument(..., help="Reward items JSONL (`annotate export`'s train.jsonl, or "
                                                     "ProactiveBench reward_data form)."),
        out_dir: Path = typer.Option(..., "--output", "-o", help="Folder for the sft, ranking and dropped "
                                                                 "JSONL and the LLaMA-Factory files with "
                                                                 "dataset_info.json."),
        readings: Optional[int] = typer.Option(None, "--readings", min=1, help="Independent readings per rationale."),
        attempts: Optional[int] = typer.Option(None, "--attempts", min=1, help="Rationales tried per item."),
        balance: Optional[bool] = typer.Option(None, "--balance/--no-balance", help="Upsample small categories."),
        concurrency: Optional[int] = typer.Option(None, "--concurrency", "-j", min=1, help="Items in flight at once."),
        retry_failed: bool = typer.Option(False, "--retry-failed", help="Run only the items that failed before."),
        continue_: bool = ContinueOpt,
        config: Optional[Path] = ConfigOpt, base_url: Optional[str] = BaseUrlOpt, model: Optional[str] = ModelOpt,
        api_key_env: Optional[str] = KeyEnvOpt, store: Optional[Path] = StoreOpt,
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    ) -> None:
        """Reward-model training data: a rationale per human label, kept when blind readings agree; balanced."""
        from ..workflows.kit import override
        from ..workflows.rm_trainset.config import rm_trainset_config
        from ..workflows.proactive.data import load_reward_items
        from ..workflows.rm_trainset.run import make_rm_trainset
        for path in items:  # a missing or malformed file fails before the run store exists
            load_reward_items(path)
        engine = make_engine(config, base_url, model, api_key_env, store)
        cfg = override(rm_trainset_config(engine.config), {"readings": readings, "attempts": attempts,
                                                           "balance": balance, "concurrency": concurrency},
                       prefix=("rm_trainset",))

        async def main() -> Any:
            try:
                return await make_rm_trainset(engine, cfg, items, out_dir, retry_failed=retry_failed,
                                              progress=not quiet, continue_=continue_)
            finally:
                await engine.aclose()
        res = run_async(main)
        print_result(res.run, "items")
        console.print(f"kept {res.kept} (by category: {res.by_category}), dropped {res.dropped} "
                      f"(see {out_dir / 'dropped.jsonl'}); after balancing: {res.balanced}", highlight=False,
                      soft_wrap=True)
        for name, rep in res.exports.items():
            console.print(f"{name}: {escape(str(rep.output))} ({rep.written} written)", highlight=False)
        if res.run.failures_remain:  # failed now or earlier: not done until they are retried
            raise typer.Exit(1)
