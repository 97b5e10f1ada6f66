"""`dialogforge report`: one self-contained HTML file (plots embedded as PNG) and a
short terminal summary."""
from __future__ import annotations

import base64
import io
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from ..core.rows import refuse_overwrite
from .stats import MAX_TURN, DatasetStats, collect

COLORS = {"user": "#4C78A8", "assistant": "#F58518"}


def _png(fig) -> str:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _fig(title: str, xlabel: str, ylabel: str, size: tuple[float, float] = (6.4, 3.6)):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=size)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    return fig, ax


def _bars(counter: dict, title: str, xlabel: str, ylabel: str = "conversations", horizontal: bool = False,
          color: str = "#4C78A8") -> str:
    fig, ax = _fig(title, xlabel, ylabel, (6.4, max(2.4, 0.32 * len(counter) + 1)) if horizontal else (6.4, 3.6))
    labels, values = [str(k) for k in counter], list(counter.values())
    if horizontal:
        ax.barh(labels[::-1], values[::-1], color=color)
        ax.grid(axis="x", alpha=0.3)
    else:
        ax.bar(labels, values, color=color)
    return _png(fig)


def _hist(values: list[float], title: str, xlabel: str, color: str) -> str:
    fig, ax = _fig(title, xlabel, "conversations")
    distinct = sorted(set(values))
    if len(distinct) <= 12:
        counts = [values.count(v) for v in distinct]
        ax.bar([f"{v:g}" for v in distinct], counts, color=color)
    else:
        ax.hist(values, bins=30, color=color)
    return _png(fig)


def _lengths(st: DatasetStats) -> str:
    import numpy as np
    fig, ax = _fig("Answer length by turn and role", "turn (0 = first)", "characters")
    for role in ("user", "assistant"):
        turns = sorted(t for (r, t) in st.lengths if r == role)
        if not turns:
            continue
        q = [np.percentile(st.lengths[(role, t)].values, [25, 50, 75]) for t in turns]
        med = [x[1] for x in q]
        ax.plot(turns, med, marker="o", color=COLORS[role], label=f"{role} (median)")
        ax.fill_between(turns, [x[0] for x in q], [x[2] for x in q], color=COLORS[role], alpha=0.18,
                        label=f"{role} (25-75%)")
    last = max(t for (_, t) in st.lengths)
    ax.set_xticks(range(0, last + 1))
    ax.set_xticklabels([str(i) if i < MAX_TURN else f"{MAX_TURN}+" for i in range(last + 1)])
    ax.legend(fontsize=8)
    return _png(fig)


def plots(st: DatasetStats) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []

    def add(title: str, png: str | None, note: str = "") -> None:
        out.append({"title": title, "png": png or "", "note": note})

    turns = dict(sorted(st.turns.items()))
    add("Turns per conversation", _bars(turns, "Assistant turns per conversation", "assistant turns") if turns else None,
        "" if turns else "no conversations")
    add("Answer lengths", _lengths(st) if st.lengths else None, "" if st.lengths else "no messages with text")
    add("Judge scores", _hist(st.scores.values, "Judge scores", "score", "#54A24B") if st.scores.n else None,
        f"{st.scores.n} scored" + (f" (sample of {len(st.scores.values)})" if st.scores.n > len(st.scores.values)
                                   else "") if st.scores.n else "no judge scores in this dataset")
    add("Rewards", _hist(st.rewards.values, "Rewards", "reward", "#B279A2") if st.rewards.n else None,
        f"{st.rewards.n} with a reward" if st.rewards.n else "no rewards in this dataset")
    reasons = dict(st.reasons.most_common(15))
    add("Filter and check reasons",
        _bars(reasons, "Why conversations were filtered", "conversations", "check or reason", horizontal=True,
              color="#E45756") if reasons else None,
        ", ".join(f"{k}: {v}" for k, v in st.passed.items()) or ("" if reasons else "no check results"))
    dup = st.duplicates
    if dup and dup.get("cluster_sizes"):
        add("Duplicates", _bars(dup["cluster_sizes"], "Duplicate clusters by size", "rows in cluster",
                                "clusters", color="#72B7B2"),
            f"exact removed: {dup.get('exact_removed')}, near removed: {dup.get('near_removed')}, "
            f"threshold {dup.get('threshold')}")
    else:
        add("Duplicates", None, "no duplicate clusters" if dup else "run dedup and pass --clusters to see duplicates")
    return out


def summary_rows(st: DatasetStats) -> list[tuple[str, str]]:
    s = st.summary()

    def f(v: Any) -> str:
        return "-" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v))
    rows = [("rows", f(s["rows"])), ("conversations", f(s["conversations"])), ("unreadable", f(s["unreadable"])),
            ("preference pairs", f(s["preference_pairs"])), ("with tools", f(s["with_tools"])),
            ("tool calls", f(s["tool_calls"])), ("mean assistant turns", f(s["mean_assistant_turns"])),
            ("mean judge score", f(s["mean_score"]) + f" ({s['scored']} scored)"),
            ("mean reward", f(s["mean_reward"]) + f" ({s['rewarded']} with reward)")]
    for key in ("passed", "success", "purposes", "rounds"):
        if s[key]:
            rows.append((key, ", ".join(f"{k}: {v}" for k, v in s[key].items())))
    if s["reasons"]:
        rows.append(("top reasons", ", ".join(f"{k}: {v}" for k, v in list(s["reasons"].items())[:5])))
    if s["duplicates"]:
        d = s["duplicates"]
        rows.append(("duplicates removed", f"exact {d.get('exact_removed')}, near {d.get('near_removed')}"))
    return rows


def report(dataset: str | os.PathLike, output: str | os.PathLike | None = None, *,
           clusters: str | os.PathLike | None = None, title: str | None = None) -> tuple[Path, DatasetStats]:
    """Write the HTML report (default: DATASET.report.html); returns (path, stats)."""
    out = Path(output) if output else Path(str(dataset) + ".report.html")
    refuse_overwrite([dataset, clusters], {"-o": out})
    st = collect(dataset, clusters=clusters)
    env = Environment(loader=PackageLoader("dialogforge.formats", "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    page = env.get_template("report.html.j2").render(
        title=title or f"Dataset report: {Path(dataset).name}", source=str(dataset),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        summary=summary_rows(st), plots=plots(st), roles=dict(st.roles))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out, st
