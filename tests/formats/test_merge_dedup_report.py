"""merge keeps provenance; dedup finds exact and near duplicates (CJK too); report renders."""
from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from dialogforge.cli.main import app
from dialogforge.formats import dedup, merge, report
from formats_samples import agent_sample, persona_dialogue, read_jsonl, write_jsonl


def test_merge_keeps_distinct_rounds_and_drops_exact_repeats(tmp_path: Path):
    r0 = write_jsonl(tmp_path / "round0.jsonl", [agent_sample(0, round_=0), agent_sample(1, round_=0)])
    same_text_next_round = agent_sample(0, round_=1)
    same_text_next_round["id"] = agent_sample(0, round_=0)["id"]  # identical content, only the round differs
    r1 = write_jsonl(tmp_path / "round1.jsonl", [same_text_next_round])
    plain = write_jsonl(tmp_path / "persona.jsonl", [persona_dialogue(0), persona_dialogue(0)])
    out = tmp_path / "all.jsonl"
    rep = merge([r0, r1, r0, plain], out)
    rows = read_jsonl(out)
    assert rep.kept == len(rows) == 4
    assert [f.duplicates for f in rep.files] == [0, 0, 2, 1]
    assert sorted(r["round"] for r in rows if "round" in r) == [0, 0, 1]
    persona = [r for r in rows if "persona" in r][0]
    assert persona["run"] == "persona" and persona["source"] == {"file": str(plain), "line": 1}
    assert rep.rounds["run-a/round 0"] == 2 and rep.rounds["run-a/round 1"] == 1
    again = merge([out], tmp_path / "again.jsonl")  # merging a merged file changes nothing
    assert again.kept == 4 and again.duplicates == 0


def test_dedup_exact_and_near_with_clusters_report(tmp_path: Path):
    def dialogue(i: int, answer: str, score: float) -> dict:
        d = persona_dialogue(i, score=score)
        d["messages"][3]["content"] = answer
        return d
    base = "그럼 산미가 좋은 아메리카노를 추천해요. 원두는 에티오피아산이라 과일 향이 나요. 따뜻하게 드셔 보세요."
    rows = [
        dialogue(0, base, 6.0),
        dialogue(0, "  " + base.replace("추천해요.", "추천해요.\n"), 9.0),  # same after whitespace/case
        dialogue(0, base.replace("따뜻하게", "차갑게"), 7.0),  # near duplicate
        dialogue(5, "完全に違う話題です。今日は雨なので、図書館で本を読みます。静かな場所が好きです。", 5.0),
        "{broken",
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "dedup.jsonl"
    r = dedup(src, out, threshold=0.7, ngram=3)
    kept = read_jsonl(out)
    assert (r.rows, r.kept, r.exact_removed, r.near_removed) == (5, 2, 1, 1)
    assert r.unreadable and "line 5" in r.unreadable[0]
    data = json.loads(Path(r.clusters_path).read_text())
    [cluster] = data["clusters"]
    assert cluster["kept"] == 0 and [m["index"] for m in cluster["members"]] == [0, 1, 2]
    assert [m["match"] for m in cluster["members"]] == ["first", "exact", "near"]
    assert 0.7 <= cluster["members"][2]["similarity"] < 1.0
    assert kept[1]["id"] == "p5"
    best = dedup(src, tmp_path / "best.jsonl", threshold=0.7, ngram=3, keep="best")
    assert best.kept == 2 and json.loads(Path(best.clusters_path).read_text())["clusters"][0]["kept"] == 1
    assert read_jsonl(tmp_path / "best.jsonl")[0]["judge"]["score"] == 9.0
    strict = dedup(src, tmp_path / "strict.jsonl", threshold=0.99, ngram=3)
    assert (strict.exact_removed, strict.near_removed) == (1, 0)


def test_report_is_self_contained_html_with_plots(tmp_path: Path):
    rows = [agent_sample(i, reward=i / 4, success=i % 2 == 0) for i in range(4)] + \
           [persona_dialogue(i, score=5 + i, passed=i % 2 == 0) for i in range(6)]
    src = write_jsonl(tmp_path / "data.jsonl", rows)
    d = dedup(src, tmp_path / "d.jsonl", threshold=0.5, ngram=3)
    path, st = report(src, tmp_path / "report.html", clusters=d.clusters_path)
    html = path.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 6
    assert not re.search(r"""(src|href)=["']https?://""", html)
    assert st.conversations == 10 and st.scores.n == 6 and st.rewards.n == 4
    assert st.reasons == {"echo": 3} and st.turns == {2: 10}
    assert st.lengths[("assistant", 1)].n == 10
    res = CliRunner().invoke(app, ["report", str(src), "-o", str(tmp_path / "r2.html")])
    assert res.exit_code == 0 and "mean judge score" in res.output and (tmp_path / "r2.html").exists()


def test_report_on_empty_metadata_says_so(tmp_path: Path):
    src = write_jsonl(tmp_path / "plain.jsonl", [{"messages": [{"role": "user", "content": "hi"},
                                                               {"role": "assistant", "content": "hello"}]}])
    path, st = report(src)
    html = path.read_text(encoding="utf-8")
    assert path.name == "plain.jsonl.report.html"
    assert "no judge scores in this dataset" in html and "no rewards in this dataset" in html
    assert html.count("data:image/png;base64,") == 2
