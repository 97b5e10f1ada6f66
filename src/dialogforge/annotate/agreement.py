"""Agreement for the admin page: Krippendorff's alpha (the `krippendorff` library, nominal) over every judgement
unit (each candidate of each turn, and each turn's help question), and per item the share of its annotators
who agree with its majority."""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session as DBSession

from . import db


@dataclass
class ItemAgreement:
    trace: str
    turn: int
    what: str            # candidate text, or "help needed?"
    votes: int
    agree: float         # share agreeing with the majority


def _units(s: DBSession) -> tuple[dict[tuple, dict[int, bool]], dict[tuple, tuple[str, int, str]]]:
    finished = {(x.trace_id, x.user_id) for x in s.scalars(select(db.Slot).where(db.Slot.done_at.is_not(None)))}
    turns = {t.id: t for t in s.scalars(select(db.Turn))}
    names = dict(s.execute(select(db.Trace.id, db.Trace.name)).all())
    units: dict[tuple, dict[int, bool]] = defaultdict(dict)
    labels: dict[tuple, tuple[str, int, str]] = {}
    for a in s.scalars(select(db.Answer)):
        if (a.trace_id, a.user_id) not in finished:
            continue
        t = turns[a.turn_id]
        units[(t.id, "help")][a.user_id] = a.help_needed
        labels[(t.id, "help")] = (names[t.trace_id], t.idx, "help needed?")
        for j, cand in enumerate(t.candidates):
            units[(t.id, j)][a.user_id] = j in a.accepted and not a.reject_all
            labels[(t.id, j)] = (names[t.trace_id], t.idx, cand)
    return units, labels


def alpha(s: DBSession) -> float | None:
    """Krippendorff's alpha (nominal) over all units with two or more judgements; None when undefined."""
    import krippendorff
    import numpy as np

    units, _ = _units(s)
    units = {k: v for k, v in units.items() if len(v) >= 2}
    users = sorted({u for v in units.values() for u in v})
    if len(users) < 2 or not units:
        return None
    keys = list(units)
    data = np.full((len(users), len(keys)), np.nan)
    for j, k in enumerate(keys):
        for i, u in enumerate(users):
            if u in units[k]:
                data[i, j] = float(units[k][u])
    if len(np.unique(data[~np.isnan(data)])) < 2:
        return 1.0   # every judgement the same: perfect agreement (the formula divides by zero)
    value = float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    return None if math.isnan(value) else value


def per_item(s: DBSession) -> list[ItemAgreement]:
    units, labels = _units(s)
    out = []
    for k, votes in units.items():
        yes = sum(votes.values())
        n = len(votes)
        trace, turn, what = labels[k]
        out.append(ItemAgreement(trace, turn, what, n, max(yes, n - yes) / n))
    out.sort(key=lambda x: (x.agree, x.trace, x.turn))
    return out
