#!/usr/bin/env python3
"""Check the stage figures of a mediabatch-perf report (issue 14, stage timestamps): the text's
"stages" block against the JSON's "stages", "stages_sum_ms", "batches_closed" and each model's
"stages"; the JSON's own consistency (the five stages in order, the documented keys, shares that
add up to 1, null figures for a stage without requests); the block inside 100 columns and right
after the "server side" line (or the "metrics" line under it that a fleet's report has).

usage: check_stages.py TEXT_FILE JSON_FILE
Exits 0 when everything holds; otherwise prints each problem and exits 1.
"""
import json
import re
import sys

STAGES = ["queue", "admission", "dispatch", "compute", "egress"]
KEYS = ["mean_ms", "share", "p50_ms", "p99_ms", "count"]
REASONS = ["full", "deadline", "drain"]
problems = []


def check(cond, what):
    if not cond:
        problems.append(what)
    return cond


def close(text, value, decimals, what):
    """A figure printed with `decimals` decimals (or n/a) matches the JSON's (or null)."""
    if text == "n/a":
        check(value is None, f"{what}: text n/a, JSON {value}")
        return
    if check(value is not None, f"{what}: text {text}, JSON null"):
        check(abs(float(text) - value) <= 0.5 * 10 ** -decimals + 1e-9 * abs(value),
              f"{what}: text {text}, JSON {value}")


def share_close(text, share, what):
    if text == "n/a":
        check(share is None, f"{what}: text n/a, JSON {share}")
    elif check(text.endswith("%"), f"{what}: '{text}' is not a percentage"):
        close(text[:-1], None if share is None else 100 * share, 0, what)


def cells(tokens):
    """Table cells 'MEAN SHARE%' or a lone 'n/a' -> [(mean, share) | None, ...]"""
    out, i = [], 0
    while i < len(tokens):
        if tokens[i] == "n/a":
            out.append(None)
            i += 1
        else:
            out.append((tokens[i], tokens[i + 1] if i + 1 < len(tokens) else "?"))
            i += 2
    return out


def check_json_stages(st, where):
    if st is None:
        return
    if not check(list(st) == STAGES, f"{where}: stages {list(st)}, expected {STAGES}"):
        return
    shares = []
    for s in STAGES:
        v = st[s]
        if v is None:
            continue
        if not check(list(v) == KEYS, f"{where} {s}: keys {list(v)}, expected {KEYS}"):
            continue
        if v["count"] == 0:
            check(all(v[k] is None for k in KEYS[:4]), f"{where} {s}: figures without requests")
            continue
        check(v["mean_ms"] >= 0, f"{where} {s}: negative mean")
        check(v["p50_ms"] <= v["p99_ms"] + 1e-12, f"{where} {s}: p50 above p99")
        if v["share"] is not None:
            shares.append(v["share"])
    if shares:
        check(abs(sum(shares) - 1) < 1e-9, f"{where}: shares add up to {sum(shares)}")


def model_cells_match(cs, st, where):
    check(len(cs) == len(STAGES), f"{where}: {len(cs)} cells")
    for s, cell in zip(STAGES, cs):
        v = st[s] if st is not None else None
        if cell is None:
            check(v is None or v["mean_ms"] is None, f"{where} {s}: n/a in the text, {v} in JSON")
        elif check(v is not None, f"{where} {s}: {cell} in the text, null in JSON"):
            close(cell[0], v["mean_ms"], 3, f"{where} {s} mean")
            share_close(cell[1], v["share"], f"{where} {s} share")


def check_closed_line(block, run, where):
    rows = [l for l in block if l.startswith("batches closed")]
    if run["metrics"] is None:
        check(not rows, f"{where}: batches closed line without /metrics")
        return
    if not check(len(rows) == 1, f"{where}: {len(rows)} batches closed lines"):
        return
    if run["batches_closed"] is None:
        check(re.match(r"^batches closed\s+n/a", rows[0]), f"{where}: closed null but not n/a")
        return
    m = re.match(r"^batches closed\s+full (\d+), deadline (\d+), drain (\d+)$", rows[0])
    if check(m, f"{where}: batches closed line '{rows[0]}'"):
        for g, k in zip(range(1, 4), REASONS):
            check(int(m.group(g)) == run["batches_closed"][k],
                  f"{where}: closed {k}: text {m.group(g)}, JSON {run['batches_closed'][k]}")


def check_single(lines, run):
    first = lambda p: next((i for i, l in enumerate(lines) if l.startswith(p)), None)
    i_server, i_st, i_adm = first("server side"), first("stages"), first("admission")
    if not check(None not in (i_server, i_st, i_adm), "no server side, stages or admission line"):
        return
    # with a fleet of several daemons, a line saying whose /metrics they are comes between
    if lines[i_server + 1].startswith("metrics "):
        i_server += 1
    check(i_st == i_server + 1, "the stages block does not follow the server side line")
    check(i_st < i_adm, "the stages block is not before the admission line")
    block = lines[i_st:i_adm]
    for l in block:
        check(len(l) <= 100, f"over 100 columns: {l!r}")
    check_closed_line(block, run, "run")
    st = run["stages"]
    if st is None:
        check(re.match(r"^stages\s+n/a \(", lines[i_st]), "stages null in JSON, not n/a in text")
        check(run["stages_sum_ms"] is None, "stages null but a stages_sum_ms")
        check(all(m["stages"] is None for m in run["models"]), "model stages without stages")
        return
    check("bucket estimates" in lines[i_st], "the stages line does not say bucket estimates")
    for s in STAGES:
        rows = [l for l in block if re.match(r"^ {16}" + s + " ", l)]
        if not check(len(rows) == 1, f"{len(rows)} text rows for stage {s}"):
            continue
        t, v = rows[0].split()[1:], st[s]
        if v is None:
            check(t == ["n/a"] * 5, f"stage {s} null in JSON, text {t}")
            continue
        close(t[0], v["mean_ms"], 3, f"{s} mean")
        share_close(t[1], v["share"], f"{s} share")
        close(t[2], v["p50_ms"], 3, f"{s} p50")
        close(t[3], v["p99_ms"], 3, f"{s} p99")
        check(int(t[4]) == v["count"], f"{s} count: text {t[4]}, JSON {v['count']}")
    rows = [l for l in block if re.match(r"^ {16}all stages ", l)]
    if check(len(rows) == 1, "no 'all stages' row"):
        close(rows[0].split()[2], run["stages_sum_ms"], 3, "all stages")
    means = [st[s]["mean_ms"] for s in STAGES if st[s] is not None and st[s]["mean_ms"] is not None]
    if means:
        check(abs(sum(means) - run["stages_sum_ms"]) < 1e-9, "stages_sum_ms is not the sum")
    by_model = first("stages by model")
    if len(run["models"]) < 2:
        check(by_model is None, "a stages by model table for one model")
        return
    if not check(by_model is not None and i_st < by_model < i_adm, "no stages by model table"):
        return
    check(lines[by_model + 1].split() == ["model"] + STAGES, "stages by model header")
    for k, m in enumerate(run["models"]):
        row = lines[by_model + 2 + k]
        t = row.split()
        if check(t[0] == m["model"], f"stages by model row {k}: {row!r}"):
            model_cells_match(cells(t[1:]), m["stages"], f"model {m['model']}")


def check_sweep(lines, runs):
    i_st = next((i for i, l in enumerate(lines) if l.startswith("stages")), None)
    if not check(i_st is not None, "sweep: no stages line"):
        return
    block = lines[i_st:i_st + 2 + len(runs)]  # title, header, a row per step
    for l in block:
        check(len(l) <= 100, f"over 100 columns: {l!r}")
    if all(r["stages"] is None for r in runs):
        check(re.match(r"^stages\s+n/a \(", lines[i_st]), "sweep: stages null, text not n/a")
        return
    check(lines[i_st + 1].split()[:6] == ["step"] + STAGES, "sweep: stages header")
    for k, run in enumerate(runs):
        t = lines[i_st + 2 + k].split()
        where = f"sweep step {k + 1}"
        check(t[0] == str(k + 1), f"{where}: row {t}")
        model_cells_match(cells(t[1:-2]), run["stages"], where)
        close(t[-2], run["stages_sum_ms"], 3, f"{where} all")
        bc = run["batches_closed"]
        want = "n/a" if bc is None else "/".join(str(int(bc[x])) for x in REASONS)
        check(t[-1] == want, f"{where}: closed {t[-1]}, JSON {bc}")


def main():
    text = open(sys.argv[1]).read()
    with open(sys.argv[2]) as f:
        doc = json.load(f)
    for i, run in enumerate(doc["runs"]):
        for key in ("stages", "stages_sum_ms", "batches_closed"):
            check(key in run, f"run {i + 1}: no '{key}'")
        if run["metrics"] is None:
            check(run["stages"] is None and run["batches_closed"] is None,
                  f"run {i + 1}: stage figures without /metrics")
        check_json_stages(run["stages"], f"run {i + 1}")
        if run["batches_closed"] is not None:
            check(list(run["batches_closed"]) == REASONS, f"run {i + 1}: batches_closed keys")
        for m in run["models"]:
            check("stages" in m, f"run {i + 1} model {m['model']}: no 'stages'")
            check_json_stages(m.get("stages"), f"run {i + 1} model {m['model']}")
    lines = text.splitlines()
    if doc["mode"] == "sweep":
        check_sweep(lines, doc["runs"])
    else:
        check_single(lines, doc["runs"][0])
    for p in problems:
        print("check_stages:", p)
    if not problems:
        print(f"check_stages: OK ({doc['mode']}, {len(doc['runs'])} run(s))")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
