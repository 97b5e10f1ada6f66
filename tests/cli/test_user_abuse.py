"""#9 re-checked on the commands the issue did not name: a failed command creates nothing (no run store, no
output, no annotation project), a missing extra is one line, bad rows that leave nothing to write fail."""
from __future__ import annotations

import json
import os
import sys

import pytest
from typer.testing import CliRunner

from dialogforge.cli.main import app

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples")
TRACE = os.path.abspath(os.path.join(EXAMPLES, "annotate", "code_demo.json"))


def run(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def files(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def one_error(r, *needles: str, code: int = 2) -> None:
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output and (r.exception is None or isinstance(r.exception, SystemExit)), r.output
    for n in needles:
        assert n in r.output, (n, r.output)


def test_agent_pairs_on_an_unreadable_samples_file_writes_no_output(scratch):
    (scratch / "samples.jsonl").write_bytes(b'{"instance": "caf\xe9"}\n')
    r = run("agent", "pairs", "samples.jsonl", "-o", "p.jsonl")
    one_error(r, "samples.jsonl:1: not UTF-8 text")
    assert not (scratch / "p.jsonl").exists()
    (scratch / "empty.jsonl").write_text("")
    one_error(run("agent", "pairs", "empty.jsonl", "-o", "p.jsonl"), "0 rows in empty.jsonl")
    assert not (scratch / "p.jsonl").exists()


def test_agent_run_with_an_unscorable_task_creates_no_run_store(scratch, server):
    (scratch / "ws").mkdir()
    (scratch / "t.jsonl").write_text('{"id": "t1", "problem_statement": "x", "workspace": "ws"}\n')
    before = files(scratch)
    r = run("agent", "run", "t.jsonl", "--base-url", server.base_url, "--model", "m", "--out", "out")
    one_error(r, "task t1: no eval_command or evaluator")
    assert files(scratch) == before  # no .dialogforge/, no out/


@pytest.mark.parametrize("args", [["proactive", "scenes", "nope.yaml", "-o", "s.jsonl"],
                                  ["proactive", "simulate", "nope.jsonl", "-o", "s.jsonl"],
                                  ["proactive", "trainset", "nope.jsonl", "-o", "tr"],
                                  ["proactive", "eval", "nope", "-o", "ev"],
                                  ["proactive", "eval", "--reward-items", "nope.jsonl", "-o", "ev"]])
def test_proactive_with_a_missing_input_creates_nothing(scratch, server, args):
    r = run(*args, "--base-url", server.base_url, "--model", "m")
    one_error(r, "nope")
    assert files(scratch) == set()


def test_proactive_simulate_with_unreadable_scenes_creates_nothing(scratch, server):
    (scratch / "scenes.jsonl").write_bytes(b'{"name": "caf\xe9"}\n')
    r = run("proactive", "simulate", "scenes.jsonl", "-o", "t.jsonl", "--base-url", server.base_url, "--model", "m")
    one_error(r, "scenes.jsonl:1: not UTF-8 text")
    assert files(scratch) == {"scenes.jsonl"}


def test_rm_trainset_with_bad_items_creates_no_run_store(scratch, server):
    (scratch / "items.jsonl").write_text('{"pred_task": "x"}\n')
    r = run("annotate", "rm-trainset", "items.jsonl", "-o", "rm", "--base-url", server.base_url, "--model", "m")
    one_error(r, "items.jsonl:1: missing field 'obs'")
    assert files(scratch) == {"items.jsonl"}


@pytest.mark.parametrize("bad", [["nope.json"], ["bad.jsonl"], [TRACE, "--ask-every", "0"]])
def test_annotate_import_of_bad_input_creates_no_project(scratch, bad):
    (scratch / "bad.jsonl").write_text('{"not": "a trace"}\n')
    r = run("annotate", "import", "proj", *bad)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert not (scratch / "proj").exists()
    assert "admin" not in r.output  # no account was made (and no password printed)
    r = run("annotate", "import", "proj", TRACE)
    assert r.exit_code == 0 and "imported 1 new trace" in r.output, r.output


@pytest.mark.parametrize("args", [["import", "proj", TRACE], ["invite", "proj", "dana"],
                                  ["reset-password", "proj"], ["export", "proj", "-o", "out"], ["serve", "proj"]])
def test_annotate_without_its_extra_says_how_to_install_it(scratch, monkeypatch, args):
    for name in [m for m in sys.modules if m.startswith("dialogforge.annotate") or m.split(".")[0] == "sqlalchemy"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # `import sqlalchemy` raises ImportError
    r = run("annotate", *args)
    one_error(r, "pip install 'dialogforge[annotate]'")
    assert files(scratch) == set()


def test_persona_check_into_a_folder_names_it_and_leaves_nothing(scratch):
    (scratch / "d.jsonl").write_text('{"messages": [{"role": "user", "content": "hi there"}, '
                                     '{"role": "assistant", "content": "hello to you"}]}\n')
    (scratch / "fold").mkdir()
    for args in (["-o", "fold"], ["-o", "c.jsonl", "--filtered", "fold"]):
        r = run("persona", "check", "d.jsonl", *args)
        one_error(r, "fold is a folder")
        assert files(scratch) == {"d.jsonl", "fold"}


@pytest.mark.parametrize("cmd", [["export", "bad.jsonl", "-o", "e.jsonl", "--to", "sharegpt"],
                                 ["merge", "bad.jsonl", "-o", "m.jsonl"], ["dedup", "bad.jsonl", "-o", "d.jsonl"],
                                 ["report", "bad.jsonl"]])
def test_inputs_whose_every_row_is_unreadable_fail(scratch, cmd):
    (scratch / "bad.jsonl").write_bytes(b'{"messages": "caf\xe9"}\nnot json\n')
    r = run(*cmd)
    assert r.exit_code == 1, r.output
    assert "could be read" in r.output or "rejected" in r.output, r.output


def test_a_folder_given_for_an_input_file_is_called_a_folder(scratch):
    (scratch / "fold").mkdir()
    for cmd in (["validate", "fold", "-f", "sharegpt"], ["report", "fold"], ["batch", "import", "fold"]):
        r = run(*cmd)
        one_error(r, "fold: is a folder")


@pytest.mark.parametrize("flags", [["--executor", "ray", "--ray-workers", "0"], ["--batch", "--batch-poll", "-1"]])
def test_executor_numbers_are_validated(scratch, server, flags):
    (scratch / "in.jsonl").write_text('{"prompt": "hi"}\n')
    r = run("generate", "in.jsonl", "-o", "o.jsonl", "--base-url", server.base_url, "--model", "m", *flags)
    assert r.exit_code == 2 and "Invalid value" in r.output, r.output
    assert files(scratch) == {"in.jsonl"}


def test_generate_refuses_a_file_where_no_row_has_a_prompt(scratch, server):
    (scratch / "q.jsonl").write_text('{"question": "hi"}\n{"question": "there"}\n')
    before = server.requests[:]
    r = run("generate", "q.jsonl", "-o", "o.jsonl", "--base-url", server.base_url, "--model", "m",
            "--field", "prompt=questio")
    one_error(r, "q.jsonl: no row has a 'prompt' string or a 'messages' list", "prompt=questio", "question")
    assert not (scratch / "o.jsonl").exists() and server.requests == before
    r = run("generate", "q.jsonl", "-o", "o.jsonl", "--base-url", server.base_url, "--model", "m", "-q",
            "--field", "prompt=question")
    assert r.exit_code == 0 and len((scratch / "o.jsonl").read_text().splitlines()) == 2, r.output


@pytest.mark.parametrize("flags", [["--persona", "nosuch"], ["--turns", "0"], ["--turns", "5-2"]])
def test_persona_run_checks_its_flags_before_the_run_store_exists(scratch, server, flags):
    (scratch / "seeds.jsonl").write_text('{"instruction": "Why?", "output": "Because."}\n')
    (scratch / "p.yaml").write_text("persona:\n  seeds: {path: seeds.jsonl}\n  personas: [orbit]\n")
    r = run("persona", "run", "p.yaml", "--base-url", server.base_url, "--model", "m", *flags)
    one_error(r, "persona.")
    assert files(scratch) == {"seeds.jsonl", "p.yaml"}


def test_batch_import_into_a_store_that_does_not_exist_creates_none(scratch):
    (scratch / "out.jsonl").write_text('{"custom_id": "x", "response": {"status_code": 200, "body": {}}}\n')
    for args in ([], ["--store", "typo/s.sqlite"]):
        r = run("batch", "import", "out.jsonl", *args)
        one_error(r, "no run store at")
        assert files(scratch) == {"out.jsonl"}


def test_persona_check_with_judge_reads_every_dialogue_before_the_run_store_exists(scratch, server):
    (scratch / "bad.jsonl").write_text('{"x": 1}\n')
    r = run("persona", "check", "bad.jsonl", "-o", "c.jsonl", "--judge", "--base-url", server.base_url, "--model", "m")
    one_error(r, "record 1: no messages")
    assert files(scratch) == {"bad.jsonl"}


DIALOGUE = '{"messages": [{"role": "user", "content": "hi there"}, {"role": "assistant", "content": "hello to you"}]}\n'


@pytest.mark.parametrize("info, needle", [(b"not json", "di.json: not valid JSON"),
                                          (b"\xff\xfe{}", "di.json: not UTF-8 text")])
def test_export_checks_dataset_info_before_writing_anything(scratch, info, needle):
    (scratch / "d.jsonl").write_text(DIALOGUE)
    (scratch / "di.json").write_bytes(info)
    r = run("export", "d.jsonl", "-o", "e.jsonl", "--to", "sharegpt", "--dataset-info", "di.json")
    one_error(r, needle, "refusing to overwrite it")
    assert files(scratch) == {"d.jsonl", "di.json"} and (scratch / "di.json").read_bytes() == info


def test_export_refuses_dataset_info_for_targets_that_have_none(scratch):
    (scratch / "d.jsonl").write_text(DIALOGUE)
    r = run("export", "d.jsonl", "-o", "e.jsonl", "--to", "trl", "--dataset-info", "di.json")
    one_error(r, "--dataset-info/--dataset-name go with LLaMA-Factory files", "not trl")
    assert files(scratch) == {"d.jsonl"}


@pytest.mark.parametrize("clusters, needle", [(b"not json", "not a clusters file"), (b"\xff", "not UTF-8 text"),
                                              (b"[1, 2]", "not a clusters file")])
def test_report_with_a_bad_clusters_file_is_one_line(scratch, clusters, needle):
    (scratch / "d.jsonl").write_text(DIALOGUE)
    (scratch / "c.json").write_bytes(clusters)
    r = run("report", "d.jsonl", "--clusters", "c.json")
    one_error(r, "c.json: " + needle)
    assert files(scratch) == {"d.jsonl", "c.json"}


# --- audit9b: what a second pass found ------------------------------------------------------------------------------

@pytest.mark.parametrize("store", ["notdb.txt", "fold", "empty.sqlite"])
def test_a_store_path_that_is_no_run_store_is_one_line_and_stays_as_it_was(scratch, server, store):
    (scratch / "in.jsonl").write_text('{"prompt": "hi"}\n')
    (scratch / "notdb.txt").write_text("my notes\n")
    (scratch / "fold").mkdir()
    (scratch / "empty.sqlite").write_bytes(b"")
    before = files(scratch)
    one_error(run("runs", "--store", store), store)
    one_error(run("runs", "show", "--store", store), store)
    if store != "empty.sqlite":  # an empty file is no store to read, but a fine place to start one
        r = run("generate", "in.jsonl", "-o", "o.jsonl", "--base-url", server.base_url, "--model", "m", "-q",
                "--store", store)
        one_error(r, store, "folder" if store == "fold" else "not a run store")
    assert files(scratch) == before and (scratch / "notdb.txt").read_text() == "my notes\n"
    assert (scratch / "empty.sqlite").read_bytes() == b""


@pytest.mark.parametrize("content, needle", [(None, "in.jsonl: is a folder"),
                                             (b'{"prompt": "caf\xe9"}\n', "in.jsonl:1: not UTF-8 text"),
                                             (b'{"prompt": "x"\n', "in.jsonl:1: not valid JSON")])
def test_generate_with_a_bad_input_creates_no_run_store(scratch, server, content, needle):
    if content is None:
        (scratch / "in.jsonl").mkdir()
    else:
        (scratch / "in.jsonl").write_bytes(content)
    before = files(scratch)
    r = run("generate", "in.jsonl", "-o", "o.jsonl", "--base-url", server.base_url, "--model", "m", "-q")
    one_error(r, needle)
    assert files(scratch) == before  # no .dialogforge/, no o.jsonl


@pytest.mark.parametrize("args, needle", [
    (["eval", "traces"], "no .json test traces in traces"),
    (["eval", "bad.json"], "nothing to evaluate: bad.json:1: not UTF-8 text"),
    (["eval", "--predictions", "bad.json"], "nothing to evaluate"),
    (["eval", "--reward-items", "empty.jsonl"], "0 rows in empty.jsonl"),
    (["eval", "--splits", "bad.json"], "bad.json:1: not UTF-8 text"),
    (["eval", "--splits", "traces"], "traces: is a folder, not a splits file"),
    (["trainset", "bad.json"], "bad.json:1: not UTF-8 text"),
    (["scenes", "traces"], "traces: is a folder")])
def test_proactive_with_nothing_usable_creates_nothing(scratch, server, args, needle):
    (scratch / "traces").mkdir()
    (scratch / "bad.json").write_bytes(b'[{"observation": "caf\xe9"}]')
    (scratch / "empty.jsonl").write_text("")
    before = files(scratch)
    r = run("proactive", *args, "-o", "out", "--base-url", server.base_url, "--model", "m", "-q")
    one_error(r, needle)
    assert files(scratch) == before  # no out/ with empty tables, no run store


def test_rm_trainset_and_annotate_import_refuse_empty_inputs(scratch, server):
    (scratch / "empty.jsonl").write_text("")
    one_error(run("annotate", "rm-trainset", "empty.jsonl", "-o", "rm", "--base-url", server.base_url, "--model", "m"),
              "no reward items in empty.jsonl")
    one_error(run("annotate", "import", "proj", "empty.jsonl"), "0 traces in empty.jsonl: nothing to import")
    assert files(scratch) == {"empty.jsonl"}  # no run store, no project (and no admin password printed)


@pytest.mark.parametrize("cmd, left", [(["export", "bad.jsonl", "-o", "e.jsonl", "--to", "sharegpt"], {"e.rejects.jsonl"}),
                                       (["merge", "bad.jsonl", "-o", "m.jsonl"], set()),
                                       (["dedup", "bad.jsonl", "-o", "d.jsonl"], set()),
                                       (["report", "bad.jsonl"], set())])
def test_a_format_command_that_wrote_nothing_leaves_no_empty_output(scratch, cmd, left):
    (scratch / "bad.jsonl").write_bytes(b'{"messages": "caf\xe9"}\nnot json\n')
    r = run(*cmd)
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert files(scratch) == {"bad.jsonl"} | left  # the rejects file keeps the reasons; nothing empty beside it


@pytest.mark.parametrize("make, needle", [(lambda p: p.mkdir(), "di.json: is a folder"),
                                          (lambda p: p.write_bytes(b'{"x":\n "caf\xe9"}'), "di.json:2: not UTF-8 text")])
def test_validate_names_an_unreadable_dataset_info_in_one_line(scratch, make, needle):
    (scratch / "d.jsonl").write_text('{"conversations": [{"from": "human", "value": "hi"}, '
                                     '{"from": "gpt", "value": "hello"}]}\n')
    make(scratch / "di.json")
    r = run("validate", "d.jsonl", "-f", "sharegpt", "--dataset-info", "di.json")
    one_error(r, needle)
    assert "Errno" not in r.output and "surrogates" not in r.output


@pytest.mark.parametrize("cmd", [["agent", "run", "tasks.jsonl", "--out", "o"],
                                 ["agent", "import-tasks", "tasks.jsonl", "-o", "t.jsonl"]])
def test_a_folder_given_for_agent_tasks_is_called_a_folder(scratch, server, cmd):
    (scratch / "tasks.jsonl").mkdir()
    r = run(*cmd, *(["--base-url", server.base_url, "--model", "m"] if cmd[1] == "run" else []))
    one_error(r, "tasks.jsonl: is a folder")
    assert files(scratch) == {"tasks.jsonl"}


@pytest.mark.parametrize("config, needle", [
    ("endpoints:\n  a: {base_url: URL, model: m, params: {temprature: 0}}\n",
     "c.yaml:2: endpoints.a.params: unknown request parameter 'temprature' (did you mean 'temperature'?)"),
    # a server's own parameters (top_k, min_p, a name like no other) pass; a near miss of a known one does not
    ("endpoints:\n  a: {base_url: URL, model: m, params: {top_k: 5, min_p: 0.1, my_server_flag: 1}}\n"
     "generate:\n  params: {max_token: 5}\n",
     "c.yaml:4: generate.params: unknown request parameter 'max_token' (did you mean 'max_tokens'?)")])
def test_a_misspelled_request_parameter_is_refused(scratch, server, config, needle):
    (scratch / "in.jsonl").write_text('{"prompt": "hi"}\n')
    (scratch / "c.yaml").write_text(config.replace("URL", server.base_url))
    before, sent = files(scratch), server.count
    one_error(run("generate", "in.jsonl", "-o", "o.jsonl", "-c", "c.yaml", "-q"), needle)
    assert files(scratch) == before and server.count == sent


@pytest.mark.parametrize("cmd, flag", [
    (["generate", "in.jsonl", "-o", "in.jsonl", "--base-url", "URL", "--model", "m"], "-o"),
    (["validate", "in.jsonl", "-f", "sharegpt", "--rejects", "in.jsonl"], "--rejects"),
    (["export", "in.jsonl", "-o", "e.jsonl", "--to", "sharegpt", "--rejects", "in.jsonl"], "--rejects"),
    (["dedup", "in.jsonl", "-o", "d.jsonl", "--clusters", "in.jsonl"], "--clusters"),
    (["report", "in.jsonl", "-o", "in.jsonl"], "-o"),
    (["persona", "check", "in.jsonl", "-o", "in.jsonl"], "-o"),
    (["persona", "check", "in.jsonl", "-o", "c.jsonl", "--filtered", "in.jsonl"], "--filtered"),
    (["agent", "pairs", "in.jsonl", "-o", "in.jsonl"], "-o"),
    (["agent", "import-tasks", "in.jsonl", "-o", "in.jsonl"], "-o"),
    (["persona", "import-config", "in.jsonl", "-o", "in.jsonl"], "-o")])
def test_an_output_that_is_the_input_is_refused_before_it_is_touched(scratch, server, cmd, flag):
    data = DIALOGUE.encode()
    (scratch / "in.jsonl").write_bytes(data)
    r = run(*[server.base_url if a == "URL" else a for a in cmd])
    one_error(r, f"{flag} ", "in.jsonl is also an input")
    assert (scratch / "in.jsonl").read_bytes() == data and files(scratch) == {"in.jsonl"}


def test_proactive_scenes_never_writes_its_yaml_over_the_seed_file(scratch, server):
    seeds = "coding:\n  tasks: [fix a bug]\n  sample_events: [opened editor]\n"
    (scratch / "seedtask.yaml").write_text(seeds)
    r = run("proactive", "scenes", "seedtask.yaml", "-o", "seedtask.jsonl", "--base-url", server.base_url, "--model", "m")
    one_error(r, "the scenes YAML seedtask.yaml is also an input")
    assert (scratch / "seedtask.yaml").read_text() == seeds and files(scratch) == {"seedtask.yaml"}


@pytest.mark.parametrize("flags, needle", [(["--date", "yesterday"], "--date 'yesterday': not a date written YYYY-MM-DD"),
                                           (["--date", "2026-13-45"], "--date '2026-13-45'")])
def test_persona_run_refuses_a_date_that_is_no_date(scratch, server, flags, needle):
    (scratch / "seeds.jsonl").write_text('{"instruction": "Why?", "output": "Because."}\n')
    (scratch / "p.yaml").write_text("persona:\n  seeds: {path: seeds.jsonl}\n  personas: [orbit]\n")
    one_error(run("persona", "run", "p.yaml", "--base-url", server.base_url, "--model", "m", *flags), needle)
    assert files(scratch) == {"seeds.jsonl", "p.yaml"}


@pytest.mark.parametrize("flags, needle", [(["--min-score", "3"], "--min-score goes with --judge"),
                                           (["--base-url", "http://x/v1", "--model", "m"], "--base-url, --model go with --judge"),
                                           (["--judge-role", "critic"], "--judge-role goes with --judge")])
def test_persona_check_flags_that_need_the_judge_are_not_ignored_without_it(scratch, flags, needle):
    (scratch / "d.jsonl").write_text(DIALOGUE)
    one_error(run("persona", "check", "d.jsonl", "-o", "c.jsonl", *flags), needle)
    assert files(scratch) == {"d.jsonl"}


def test_flags_that_would_do_nothing_or_come_too_late_are_refused_first(scratch, server):
    (scratch / "d.jsonl").write_text(DIALOGUE)
    one_error(run("validate", "d.jsonl", "-f", "sharegpt", "--task", "bogus"), "unknown task 'bogus'")
    one_error(run("dedup", "d.jsonl", "-o", "x.jsonl", "--no-exact", "--no-near"), "leaves nothing to do")
    sent = server.count
    r = run("proactive", "trainset", TRACE, "-o", "tr", "--to", "bogus", "--base-url", server.base_url, "--model", "m")
    one_error(r, "unknown export 'bogus'")
    assert files(scratch) == {"d.jsonl"} and server.count == sent  # no calls made, then refused


def test_a_misspelled_field_mapping_or_an_option_nothing_reads_is_refused(scratch, server):
    (scratch / "in.jsonl").write_text('{"prompt": "hi", "uid": "a"}\n')
    r = run("generate", "in.jsonl", "-o", "o.jsonl", "--base-url", server.base_url, "--model", "m", "--field", "idd=uid")
    one_error(r, "generate.fields: unknown name 'idd' (ours: prompt, messages, id; did you mean 'id'?)")
    (scratch / "seeds.jsonl").write_text('{"q": "Why?", "a": "Because."}\n')
    (scratch / "p.yaml").write_text("persona:\n  seeds: {path: seeds.jsonl, fields: {instrucion: q, output: a}}\n")
    r = run("persona", "run", "p.yaml", "--base-url", server.base_url, "--model", "m")
    one_error(r, "p.yaml:2: persona.seeds.fields: unknown name 'instrucion'", "did you mean 'instruction'?")
    (scratch / "ws").mkdir()
    (scratch / "t.jsonl").write_text('{"id": "t1", "problem_statement": "x", "workspace": "ws", "eval_command": "true"}\n')
    (scratch / "a.yaml").write_text("agent:\n  tasks: t.jsonl\n  environment: {type: local, options: {url: http://x}}\n")
    r = run("agent", "run", "a.yaml", "--base-url", server.base_url, "--model", "m", "--out", "out")
    one_error(r, "agent.environment: options (url) go to a custom environment", "local takes none")
    assert files(scratch) == {"in.jsonl", "seeds.jsonl", "p.yaml", "ws", "t.jsonl", "a.yaml"}


@pytest.mark.parametrize("flags, needle", [(["--temperature", "nan"], "temperature: nan cannot be sent"),
                                           (["--temperature", "inf"], "temperature: inf cannot be sent"),
                                           (["--max-tokens", "99999999999999999999999"], "cannot be sent in a request")])
def test_numbers_json_cannot_carry_are_refused_not_sent_as_null(scratch, server, flags, needle):
    (scratch / "in.jsonl").write_text('{"prompt": "hi"}\n')
    sent = server.count
    one_error(run("generate", "in.jsonl", "-o", "o.jsonl", "--base-url", server.base_url, "--model", "m", *flags), needle)
    assert files(scratch) == {"in.jsonl"} and server.count == sent


@pytest.mark.parametrize("flag", ["--min-reward", "--min-score"])
def test_export_refuses_a_selection_threshold_that_is_not_a_number(scratch, flag):
    (scratch / "d.jsonl").write_text(DIALOGUE)
    one_error(run("export", "d.jsonl", "-o", "e.jsonl", "--to", "sharegpt", flag, "nan"), f"{flag} nan: give a finite number")
    assert files(scratch) == {"d.jsonl"}


def test_proactive_scenes_and_persona_check_exit_non_zero_while_failures_remain(scratch):
    from dialogforge.testing.fake_server import FakeServer
    (scratch / "seedtask.yaml").write_text("coding:\n  tasks: [fix a bug]\n  sample_events: [opened editor]\n")
    (scratch / "d.jsonl").write_text(DIALOGUE)
    with FakeServer() as srv:
        srv.inject(status=400, count=1000, message="bad request")  # every call fails at once (not retried)
        for cmd in (["proactive", "scenes", "seedtask.yaml", "-o", "s.jsonl"],
                    ["persona", "check", "d.jsonl", "-o", "c.jsonl", "--judge"]):
            for attempt in ("first run", "rerun"):  # the rerun finds only failures: still not done
                r = run(*cmd, "--base-url", srv.base_url, "--model", "m", "-q")
                assert r.exit_code == 1 and "Traceback" not in r.output, (cmd, attempt, r.output)


def test_annotate_invite_and_a_bad_database_leave_no_half_made_project(scratch):
    for db in ("sqlite:///nonexistent/dir/x.sqlite", "bogus://x"):
        r = run("annotate", "import", "proj", TRACE, "--db", db)
        one_error(r, "database")
        assert files(scratch) == set()  # no proj/ with a secret.key and no admin
    one_error(run("annotate", "invite", "proj", "dana"), "proj: no such annotation project")
    assert run("annotate", "import", "proj", TRACE).exit_code == 0
    for name in ("", "a b", "x" * 65):
        one_error(run("annotate", "invite", "proj", name), "a user name is 1-64 letters")
    one_error(run("annotate", "invite", "proj", "dana", "--base-url", "annot.example.org"), "http(s)://HOST")
    r = run("annotate", "invite", "proj", "dana", "--base-url", "https://annot.example.org/")
    assert r.exit_code == 0 and r.output.strip().startswith("https://annot.example.org/invite/"), r.output


def test_a_deleted_output_rerun_with_other_settings_says_what_the_store_still_holds(scratch, server):
    (scratch / "in.jsonl").write_text('{"prompt": "hi"}\n')
    base = ["generate", "in.jsonl", "-o", "o.jsonl", "--base-url", server.base_url, "-q"]
    assert run(*base, "--model", "m").exit_code == 0
    (scratch / "o.jsonl").unlink()
    r = run(*base, "--model", "other")
    one_error(r, "o.jsonl was made with other settings", "the file is gone but the run store holds its rows",
              "write to another output")
    assert not (scratch / "o.jsonl").exists()


def test_runs_refuses_the_listing_flag_with_a_subcommand_that_would_ignore_it(scratch, server):
    (scratch / "in.jsonl").write_text('{"prompt": "hi"}\n')
    assert run("generate", "in.jsonl", "-o", "o.jsonl", "--base-url", server.base_url, "--model", "m", "-q").exit_code == 0
    for sub in ("show", "calls"):
        one_error(run("runs", "--exact-sizes", sub), f"--exact-sizes goes with the listing", f"not with `runs {sub}`")
    r = run("runs", "--exact-sizes")
    assert r.exit_code == 0 and "exact, walked page by page" in r.output, r.output


@pytest.mark.parametrize("seeds, flags, needle", [("", [], "0 seeds in"),
                                                  ('{"instruction": "Why?", "output": "Because."}\n', ["--start", "3"],
                                                   "from --start 3 on: nothing to do")])
def test_persona_run_with_no_seed_to_use_creates_nothing(scratch, server, seeds, flags, needle):
    (scratch / "seeds.jsonl").write_text(seeds)
    (scratch / "p.yaml").write_text("persona:\n  seeds: {path: seeds.jsonl}\n  personas: [orbit]\n")
    one_error(run("persona", "run", "p.yaml", "--base-url", server.base_url, "--model", "m", "-q", *flags), needle)
    assert files(scratch) == {"seeds.jsonl", "p.yaml"}  # no run store, no empty day files


@pytest.mark.parametrize("cmd", [["generate", "in.jsonl", "-o", "afile/o.jsonl"],
                                 ["persona", "run", "p.yaml", "--raw-dir", "afile"],
                                 ["agent", "run", "a.yaml", "--out", "afile"],
                                 ["proactive", "trainset", TRACE, "-o", "afile"],
                                 ["annotate", "rm-trainset", "items.jsonl", "-o", "afile"]])
def test_an_output_that_cannot_be_written_is_refused_before_the_run_store_exists(scratch, server, cmd):
    (scratch / "afile").write_text("mine\n")
    (scratch / "in.jsonl").write_text('{"prompt": "hi"}\n')
    (scratch / "seeds.jsonl").write_text('{"instruction": "Why?", "output": "Because."}\n')
    (scratch / "p.yaml").write_text("persona:\n  seeds: {path: seeds.jsonl}\n  personas: [orbit]\n")
    (scratch / "ws").mkdir()
    (scratch / "t.jsonl").write_text('{"id": "t1", "problem_statement": "x", "workspace": "ws", "eval_command": "true"}\n')
    (scratch / "a.yaml").write_text("agent:\n  tasks: t.jsonl\n  environment: {unsafe_local: true}\n")
    (scratch / "items.jsonl").write_text(open(os.path.join(EXAMPLES, "annotate", "reward_items.jsonl")).read())
    before, sent = files(scratch), server.count
    r = run(*cmd, "--base-url", server.base_url, "--model", "m", "-q")
    one_error(r, "afile: is a file where a folder is needed")
    assert files(scratch) == before and server.count == sent and (scratch / "afile").read_text() == "mine\n"


def test_paths_with_square_brackets_are_printed_as_they_are(scratch, server):
    """rich markup ate `[bold]` and `[red]` out of file names in the lines that report what was written."""
    tasks = os.path.join(EXAMPLES, "agent", "tasks.jsonl")
    r = run("agent", "import-tasks", tasks, "-o", "t[red].jsonl")
    assert r.exit_code == 0 and "-> t[red].jsonl" in r.output, r.output
    (scratch / "seeds.jsonl").write_text('{"instruction": "Why?", "output": "Because."}\n')
    (scratch / "p.yaml").write_text("persona:\n  seeds: {path: seeds.jsonl}\n  personas: [orbit]\n")
    r = run("persona", "run", "p.yaml", "--raw-dir", "r[bold]", "--base-url", server.base_url, "--model", "m", "-q")
    assert r.exit_code == 0 and "r[bold]/persona_raw_" in r.output, r.output
    (scratch / "seedtask.yaml").write_text("coding:\n  tasks: [fix a bug]\n  sample_events: [opened editor]\n")
    r = run("proactive", "scenes", "seedtask.yaml", "-o", "s[bold].jsonl", "--base-url", server.base_url, "--model", "m")
    assert r.exit_code == 0 and "scenes: s[bold].jsonl" in r.output and "yaml: s[bold].yaml" in r.output, r.output


def test_agent_pairs_with_no_pair_to_make_says_why_and_writes_nothing(scratch):
    (scratch / "out" / "round_1").mkdir(parents=True)
    msgs = [{"role": "user", "content": "fix it"}, {"role": "assistant", "content": "done"}]
    rows = [{"instance": "a", "round": 1, "repeat": k, "reward": 1.0, "messages": msgs} for k in (0, 1)]
    (scratch / "out" / "round_1" / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    one_error(run("agent", "pairs", "out", "-o", "p.jsonl"), "samples.jsonl:1: not an agent SFT sample (missing "
                                                              "'sample_index')")  # was a KeyError traceback
    rows = [{**r, "sample_index": 0, "step": 0} for r in rows]  # equal rewards: no pair to make
    (scratch / "out" / "round_1" / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = run("agent", "pairs", "out", "-o", "p.jsonl")
    assert r.exit_code == 1 and "no pairs" in r.output and "--min-margin 0.5" in r.output, r.output
    assert not (scratch / "p.jsonl").exists()


@pytest.mark.parametrize("row, needle", [({"messages": 5}, "index.jsonl: row 1: not an agent index row (missing 'status')"),
                                         ({"status": 5, "reward": "x", "success": 1, "n_samples": "3"},
                                          "status must be text, reward a number or null")])
def test_agent_stats_names_a_row_that_is_no_index_row(scratch, row, needle):
    (scratch / "out" / "round_1").mkdir(parents=True)
    (scratch / "out" / "round_1" / "index.jsonl").write_text(json.dumps(row) + "\n")
    one_error(run("agent", "stats", "out"), needle)  # was a KeyError traceback


def test_agent_pairs_names_fields_of_the_wrong_type(scratch):
    (scratch / "out" / "round_1").mkdir(parents=True)
    row = {"round": 1, "instance": ["a"], "repeat": 0, "reward": 1, "messages": [{"role": "user", "content": "x"}],
           "sample_index": 0, "step": 0}
    (scratch / "out" / "round_1" / "samples.jsonl").write_text(json.dumps(row) + "\n")
    one_error(run("agent", "pairs", "out", "-o", "p.jsonl"), "samples.jsonl:1: fields round, instance and repeat")
    assert not (scratch / "p.jsonl").exists()


@pytest.mark.parametrize("config, needle", [("x: &a [*a]\n", "c.yaml: a YAML alias (*name) refers to a node that holds it"),
                                            ("persona: {personas: 5}\n", "persona.personas: a persona name")])
def test_configs_that_broke_the_loader_are_one_line(scratch, server, config, needle):
    (scratch / "c.yaml").write_text(config)
    one_error(run("persona", "run", "c.yaml", "--base-url", server.base_url, "--model", "m"), needle)  # were tracebacks
    assert files(scratch) == {"c.yaml"}


def test_runs_calls_into_a_folder_names_the_folder(scratch, server):
    (scratch / "in.jsonl").write_text('{"prompt": "hi"}\n')
    assert run("generate", "in.jsonl", "-o", "o.jsonl", "--base-url", server.base_url, "--model", "m", "-q").exit_code == 0
    (scratch / "calls").mkdir()
    one_error(run("runs", "calls", "-o", "calls"), "calls: is a folder; give a file name")  # named a hidden temp file
    assert not [p for p in (scratch / "calls").iterdir()] and not list(scratch.glob(".calls*"))


def test_dedup_checks_both_of_its_outputs_before_writing_either(scratch):
    (scratch / "d.jsonl").write_text(DIALOGUE)
    (scratch / "fold").mkdir()
    one_error(run("dedup", "d.jsonl", "-o", "x.jsonl", "--clusters", "fold"), "fold: is a folder")
    assert files(scratch) == {"d.jsonl", "fold"}  # no x.jsonl written before the clusters report failed


def test_annotate_serve_on_a_port_in_use_is_one_line_and_creates_no_project(scratch):
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        one_error(run("annotate", "serve", "proj", "--port", str(port)), f"cannot listen on 127.0.0.1:{port}")
    assert files(scratch) == set()  # no project, no admin password printed for a server that never ran
