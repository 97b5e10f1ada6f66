"""Evaluation metrics, exactly as the proactive issue defines them, and their CSV / table / HTML forms.

The judge (the reward-model role) rules on every prediction, a null one included:
  a proposal it accepts is TP, a proposal it rejects is FP,
  no proposal that it accepts (quiet was right) is TN, no proposal that it rejects (help was needed) is FN.
recall = TP/(TP+FN), precision = TP/(TP+FP), accuracy = (TP+TN)/(TP+FP+TN+FN),
false-alarm rate = FP/(TP+FP), F1 = 2PR/(P+R). A ratio with a zero denominator is empty, not 0.
Failed or unparseable turns are counted in their own column, per split; they are in no ratio.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def outcome(proposal: str | None, accept: bool) -> str:
    if proposal is not None:
        return "TP" if accept else "FP"
    return "TN" if accept else "FN"


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _f1(p: float | None, r: float | None) -> float | None:
    if p is None or r is None:
        return None
    return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Counts:
    TP: int = 0
    FP: int = 0
    TN: int = 0
    FN: int = 0
    failed: int = 0
    turns: int = 0

    def add(self, name: str, n: int = 1) -> None:
        setattr(self, name, getattr(self, name) + n)

    def metrics(self) -> dict[str, float | None]:
        p, r = _ratio(self.TP, self.TP + self.FP), _ratio(self.TP, self.TP + self.FN)
        f1 = _f1(p, r)
        judged = self.TP + self.FP + self.TN + self.FN
        return {"recall": r, "precision": p, "accuracy": _ratio(self.TP + self.TN, judged),
                "false_alarm": _ratio(self.FP, self.TP + self.FP), "f1": f1}

    def row(self) -> dict[str, Any]:
        return {"turns": self.turns, "predictions": self.TP + self.FP + self.TN + self.FN, "TP": self.TP,
                "FP": self.FP, "TN": self.TN, "FN": self.FN, "failed": self.failed, **self.metrics()}


@dataclass
class Table:
    """Named rows of numbers (split -> metrics, or category -> accuracy) and how to show them."""
    title: str
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        cols: list[str] = []
        for r in self.rows.values():
            cols += [c for c in r if c not in cols]
        return cols

    def write_csv(self, path: str | os.PathLike, key: str = "split") -> None:
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow([key, *self.columns])
            for name, r in self.rows.items():
                w.writerow([name, *(_fmt(r.get(c), csv=True) for c in self.columns)])

    def rich(self):
        from rich.table import Table as RichTable
        t = RichTable(title=self.title)
        t.add_column("")
        for c in self.columns:
            t.add_column(c, justify="right")
        for name, r in self.rows.items():
            t.add_row(name, *(_fmt(r.get(c)) for c in self.columns))
        return t

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in ["", *self.columns])
        body = "".join("<tr><th>" + html.escape(n) + "</th>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in self.columns)
                       + "</tr>" for n, r in self.rows.items())
        return f"<h2>{html.escape(self.title)}</h2><table><tr>{head}</tr>{body}</table>"


def _fmt(v: Any, csv: bool = False) -> str:
    if v is None:
        return "" if csv else "-"
    if isinstance(v, float):
        return f"{v:.4f}" if csv else f"{v:.3f}"
    return str(v)


def plot_png(table: Table, metrics: list[str]) -> str:
    """Grouped bars: one group per row of the table, one bar per metric (empty values left out)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(table.rows)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(names) * len(metrics) / 3), 3.6))
    width = 0.8 / max(1, len(metrics))
    for j, m in enumerate(metrics):
        xs = [i + j * width for i in range(len(names))]
        ax.bar(xs, [table.rows[n].get(m) or 0.0 for n in names], width, label=m)
    ax.set_xticks([i + width * (len(metrics) - 1) / 2 for i in range(len(names))], names)
    ax.set_ylim(0, 1.05)
    ax.set_title(table.title, fontsize=11)
    ax.legend(fontsize=8, ncols=min(5, len(metrics)))
    ax.grid(axis="y", alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def write_html(path: str | os.PathLike, title: str, sections: list[tuple[Table, list[str]]],
               notes: list[str] | None = None) -> None:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
             "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for n in notes or []:
        parts.append(f"<p>{html.escape(n)}</p>")
    for table, metrics in sections:
        parts.append(table.html())
        if table.rows and metrics:
            parts.append(f"<img alt='{html.escape(table.title)}' src='data:image/png;base64,{plot_png(table, metrics)}'>")
    parts.append("</body></html>")
    Path(path).write_text("".join(parts), encoding="utf-8")


def reward_table(rows: list[dict[str, Any]]) -> tuple[Table, Table]:
    """Reward-model evaluation: overall accuracy/precision/recall/F1 (``valid`` is the positive class)
    and accuracy per category. An unparseable answer (pred None) counts as wrong."""
    tp = fp = tn = fn = bad = 0
    cats: dict[str, list[int]] = {}
    for r in rows:
        gold, pred = r["gold"], r["pred"]
        if pred is None:
            bad += 1
            pred = not gold  # wrong by definition
        right = pred == gold
        tp += gold and pred
        tn += (not gold) and (not pred)
        fp += (not gold) and pred
        fn += gold and (not pred)
        c = cats.setdefault(r["category"], [0, 0, 0])
        c[0] += right
        c[1] += 1
        c[2] += r["pred"] is None
    p, rc = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    overall = Table("reward model", {"all": {
        "items": len(rows), "unparseable": bad, "accuracy": _ratio(tp + tn, len(rows)), "precision": p, "recall": rc,
        "f1": _f1(p, rc)}})
    per_cat = Table("reward model: accuracy per category",
                    {k: {"items": v[1], "unparseable": v[2], "accuracy": _ratio(v[0], v[1])} for k, v in sorted(cats.items())})
    return overall, per_cat
