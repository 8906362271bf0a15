#!/usr/bin/env python3
"""Check a mediabatch-perf report: the JSON parses (Python's json module), has the documented
layout, is consistent with itself, and holds every figure the text report prints; with
--csv, the CSV of the same run parses (Python's csv module), has the documented header and
one row per run whose every cell is the JSON's value (perf/mb_perf_report.h); with --media
in the run, the media object adds up. An interrupted run: its window is the time that ran,
its requests in flight then are neither missing nor errors, it is not judged, and the text
says so; a sweep's notes under the table (a shorter window, generator lag over 1 ms,
malformed responses) and its verdict's wording agree with the runs.

usage: check_perf_report.py TEXT_FILE JSON_FILE [--mode closed|open|sweep] [--plots]
                            [--csv CSV_FILE]
Exits 0 when everything holds; otherwise prints each problem and exits 1.
"""
import csv
import json
import math
import re
import sys

problems = []


def check(cond, what):
    if not cond:
        problems.append(what)
    return cond


def close(text_value, json_value, decimals, what):
    """A figure printed with `decimals` decimals matches the JSON's full-precision value."""
    tol = 0.5 * 10 ** -decimals + 1e-9 * abs(json_value)
    check(abs(float(text_value) - json_value) <= tol,
          f"{what}: text says {text_value}, JSON has {json_value}")


def check_run(run, where, config):
    for key in ("mode", "offered_rps", "window_s", "sent", "responses", "missing", "unsent",
                "throughput_rps", "ok_rps", "error_pct", "slo_met", "latency_ms", "status",
                "batch_size", "queue_us", "compute_us", "metrics", "models", "proto_errors",
                "interrupted", "interrupted_in", "in_flight_at_interrupt"):
        if not check(key in run, f"{where}: no '{key}'"):
            return
    check(0 <= run["window_s"] <= config["duration_s"] + 1e-9,
          f"{where}: window_s {run['window_s']} outside 0..duration_s {config['duration_s']}")
    if run["interrupted"]:
        check(run["interrupted_in"] in ("warmup", "window", "drain"),
              f"{where}: interrupted_in {run['interrupted_in']}")
        check(run["slo_met"] is None, f"{where}: an interrupted run is judged")
        check(run["missing"] == 0, f"{where}: an interrupted run counts missing requests")
        if run["interrupted_in"] == "warmup":
            check(run["window_s"] == 0 and run["sent"] == 0,
                  f"{where}: interrupted in the warm-up but measured something")
    else:
        check(run["interrupted_in"] is None and run["in_flight_at_interrupt"] == 0,
              f"{where}: not interrupted, but interrupted_in {run['interrupted_in']}, "
              f"in flight {run['in_flight_at_interrupt']}")
        check(isinstance(run["slo_met"], bool), f"{where}: slo_met {run['slo_met']}")
    # errors%: not OK, missing and unsent over sent and unsent; in flight at an interrupt: none
    total = run["sent"] + run["unsent"] - run["in_flight_at_interrupt"]
    bad = run["responses"] - run["status"]["OK"] + run["missing"] + run["unsent"]
    want = 100.0 * bad / total if total else 0.0
    check(abs(run["error_pct"] - want) <= 1e-7 * max(1.0, want),
          f"{where}: error_pct {run['error_pct']}, want {want}")
    if check("lag_p99_ms" in run, f"{where}: no 'lag_p99_ms'"):
        if run["mode"] == "open":
            # a histogram percentile: within 0.39% above the exact nearest-rank value
            check(run["lag_p99_ms"] is not None and
                  0 <= run["lag_p99_ms"] <= run["max_lag_ms"] * 1.004 + 1e-9,
                  f"{where}: lag_p99_ms {run['lag_p99_ms']} outside 0..max_lag_ms "
                  f"{run['max_lag_ms']}")
        else:
            check(run["lag_p99_ms"] is None, f"{where}: lag_p99_ms in a closed loop")
    lat = run["latency_ms"]
    order = [lat["min"], lat["p50"], lat["p90"], lat["p99"], lat["p99_9"], lat["max"]]
    check(all(a <= b + 1e-9 for a, b in zip(order, order[1:])),
          f"{where}: latency percentiles not ordered: {order}")
    check(lat["count"] == run["responses"], f"{where}: latency count != responses")
    check(sum(run["status"].values()) == run["responses"],
          f"{where}: statuses add up to {sum(run['status'].values())}, "
          f"responses {run['responses']}")
    check(run["responses"] + run["missing"] + run["in_flight_at_interrupt"] == run["sent"],
          f"{where}: responses + missing + in_flight_at_interrupt != sent")
    check(sum(m["sent"] for m in run["models"]) == run["sent"],
          f"{where}: per-model sent does not add up")
    check(sum(m["ok"] for m in run["models"]) == run["status"]["OK"],
          f"{where}: per-model OK does not add up")
    check(run["batch_size"]["count"] == run["status"]["OK"],
          f"{where}: batch sizes counted for every OK response")
    if run["status"]["OK"] > 0:
        check(1 <= run["batch_size"]["mean"] <= run["batch_size"]["max"],
              f"{where}: batch size mean {run['batch_size']['mean']} outside "
              f"1..max {run['batch_size']['max']}")
    for st, n in run["status"].items():
        if st != "OK" and n > 0:
            check(st in run["reasons"], f"{where}: no reason for {st}")
    if run["metrics"] is not None:
        m = run["metrics"]
        check(0 <= m["units_in_use_mean"] <= m["units_in_use_max"] <= m["units_capacity"],
              f"{where}: units in use outside 0..capacity: {m}")
    # --metrics: how many of the listed daemons the server-side figures are the sum of
    if check("metrics_answered" in run and "metrics_missing" in run,
             f"{where}: no 'metrics_answered' or 'metrics_missing'"):
        listed = config.get("metrics_endpoints") or []
        check((run["metrics_answered"] == 0) == (run["metrics"] is None),
              f"{where}: metrics_answered {run['metrics_answered']} but metrics "
              f"{'null' if run['metrics'] is None else 'there'}")
        check(run["metrics_answered"] + len(run["metrics_missing"]) == len(listed) and
              all(e in listed for e in run["metrics_missing"]),
              f"{where}: metrics_answered {run['metrics_answered']} and missing "
              f"{run['metrics_missing']} are not the {len(listed)} endpoints listed")
    check("media_sent" in run, f"{where}: no 'media_sent'")
    if run.get("media_sent") is not None:
        ms = run["media_sent"]
        check(ms["audio"] + ms["video"] == run["sent"],
              f"{where}: requests with a file {ms} do not add up to sent {run['sent']}")


def check_media(doc, text):
    """The media object (--media) adds up, and the text says the same."""
    m = doc.get("media")
    check("media" in doc, "no top-level 'media'")
    if m is None:
        check(all(r.get("media_sent") is None for r in doc["runs"]),
              "media null but a run has media_sent")
        return
    files = m["list"]
    check(len(files) == m["files"] == m["audio_files"] + m["video_files"],
          f"media: {len(files)} files listed, {m['files']} counted")
    check([f["name"] for f in files] == sorted(f["name"] for f in files),
          "media: files not in name order")
    for kind in ("audio", "video"):
        listed = [f for f in files if f["kind"] == kind]
        check(len(listed) == m[kind + "_files"], f"media: {kind} files miscounted")
        check(sum(1 for f in listed if f["sent"] > 0) == m[kind + "_files_used"],
              f"media: {kind} files used miscounted")
        check(sum(f["sent"] for f in listed) >=
              sum(r["media_sent"][kind] for r in doc["runs"]),
              f"media: the runs sent more {kind} files than the files were sent")
    for f in files:
        check(len(f["bytes"]) == (len(m["audio_rates"]) if f["kind"] == "audio" else 1),
              f"media: {f['name']}: bytes {f['bytes']} for rates {m['audio_rates']}")
        if f["kind"] == "video":
            check(f["bytes"][0] == f["frames"] * f["height"] * f["width"] * 3,
                  f"media: {f['name']}: bytes do not match its shape")
        else:
            for rate, b in zip(m["audio_rates"], f["bytes"]):
                want = 2 * round(f["seconds"] * rate)
                check(abs(b - want) <= 4, f"media: {f['name']}: {b} bytes at {rate} Hz "
                      f"for {f['seconds']} s (want about {want})")
    check(sum(sum(f["bytes"]) for f in files) == m["memory_bytes"],
          "media: memory_bytes is not the payloads' sum")
    mt = re.search(r"^  media (.*): (\d+) audio file\(s\), (\d+) sent; (\d+) video file\(s\), "
                   r"(\d+) sent", text, re.M)
    if check(mt, "text has no media line"):
        check(mt.group(1) == m["dir"], "media: directory differs")
        check([int(mt.group(i)) for i in range(2, 6)] ==
              [m["audio_files"], m["audio_files_used"], m["video_files"],
               m["video_files_used"]], "media: text and JSON counts differ")


def check_fleet(doc, text):
    """A fleet's figures (several daemons): the JSON's add up, and the text says the same."""
    fl = doc.get("fleet")
    check("fleet" in doc, "no top-level 'fleet'")
    mt = re.search(r"^fleet\s+(\d+) daemon\(s\); resent (\d+), duplicates dropped (\d+), "
                   r"client timeouts (\d+), malformed (\d+)$", text, re.M)
    if fl is None:
        check(mt is None, "fleet null in the JSON but the text has a fleet line")
        return
    for key in ("resent", "duplicates_dropped", "client_timeouts", "malformed", "daemons"):
        check(key in fl, f"fleet: no '{key}'")
    if not check(mt, "text has no fleet line"):
        return
    check(int(mt.group(1)) == len(fl["daemons"]),
          f"fleet: text says {mt.group(1)} daemons, JSON lists {len(fl['daemons'])}")
    # several daemons: the server-side figures of /metrics are one daemon's, and say whose
    # (several --metrics endpoints: check_metrics_source())
    src = re.search(r"^metrics\s+from (\S+) only: 1 of (\d+) daemons", text, re.M)
    metrics = doc["config"]["metrics"]
    if len(doc["config"].get("metrics_endpoints") or []) > 1:
        check(src is None, "several --metrics endpoints, but the text says 'only: 1 of'")
    elif (len(fl["daemons"]) > 1 and metrics is not None and
            any(r["metrics"] is not None for r in doc["runs"])):
        if check(src, "fleet of several daemons: the text does not say whose /metrics figures "
                 "they are"):
            check(src.group(1) == metrics and int(src.group(2)) == len(fl["daemons"]),
                  f"fleet: metrics line names {src.group(1)}, 1 of {src.group(2)}; JSON "
                  f"{metrics}, {len(fl['daemons'])} daemons")
    else:
        check(src is None, "a metrics-source line without several daemons' figures")
    for g, key in zip(range(2, 6), ("resent", "duplicates_dropped", "client_timeouts",
                                    "malformed")):
        check(int(mt.group(g)) == fl[key], f"fleet {key}: text {mt.group(g)}, JSON {fl[key]}")
    rows = re.findall(r"^  (\S+)\s+(up|down)\s+answered (\d+) \(([\d.]+)%\), overloaded (\d+), "
                      r"failed over (\d+), window (\d+), ([\d.]+) ms$", text, re.M)
    check(len(rows) == len(fl["daemons"]),
          f"fleet: text has {len(rows)} daemon rows, JSON {len(fl['daemons'])}")
    total = sum(d["answered"] for d in fl["daemons"])
    for row, d in zip(rows, fl["daemons"]):
        where = f"fleet daemon {d['endpoint']}"
        for key in ("endpoint", "up", "gone", "sent", "answered", "overloaded", "failed_over",
                    "window", "latency_ms"):
            check(key in d, f"{where}: no '{key}'")
        check(row[0] == d["endpoint"], f"{where}: text names {row[0]}")
        check((row[1] == "up") == d["up"], f"{where}: up/down differs")
        check(int(row[2]) == d["answered"], f"{where}: answered differs")
        close(row[3], 100.0 * d["answered"] / total if total else 0.0, 1, where + " share")
        check(int(row[4]) == d["overloaded"], f"{where}: overloaded differs")
        check(int(row[5]) == d["failed_over"], f"{where}: failed over differs")
        close(row[6], d["window"], 0, where + " window")
        close(row[7], d["latency_ms"], 3, where + " latency")
        check(d["overloaded"] <= d["answered"] <= d["sent"],
              f"{where}: overloaded <= answered <= sent does not hold")


def check_metrics_source(doc, text):
    """Several --metrics endpoints: a line says how many of the daemons (the larger of those
    listed and the fleet's) the server-side figures are the sum of, and which did not answer;
    config.metrics is the list as given."""
    listed = doc["config"].get("metrics_endpoints") or []
    summed = re.search(r"^metrics\s+from (\d+)(?:\.\.(\d+))? of (\d+) daemons( by step)?"
                       r"(?: \((.*)\))?, summed; ", text, re.M)
    runs = [r for r in doc["runs"] if r["metrics"] is not None]
    if len(listed) < 2 or not runs:
        check(summed is None, "a 'summed' metrics line without several endpoints' figures")
        return
    check(doc["config"]["metrics"] == ",".join(listed),
          f"config.metrics {doc['config']['metrics']} is not the list {listed}")
    if not check(summed, "several --metrics endpoints: the text does not say how many daemons "
                 "the server-side figures are the sum of"):
        return
    lo, hi = min(r["metrics_answered"] for r in runs), max(r["metrics_answered"] for r in runs)
    check(int(summed.group(1)) == lo and int(summed.group(2) or summed.group(1)) == hi,
          f"metrics line: from {summed.group(1)}..{summed.group(2)}; JSON {lo}..{hi}")
    fleet = len(doc["fleet"]["daemons"]) if doc.get("fleet") else 0
    check(int(summed.group(3)) == max(len(listed), fleet),
          f"metrics line: of {summed.group(3)} daemons; {len(listed)} listed, fleet {fleet}")
    same = all(r["metrics_missing"] == runs[0]["metrics_missing"] for r in runs)
    check(bool(summed.group(4)) == (not same), "metrics line: 'by step' wrong")
    notes = summed.group(5) or ""
    if len(listed) < fleet:
        check(f"--metrics lists {len(listed)} of the fleet's {fleet}" in notes,
              f"metrics line does not say --metrics lists {len(listed)} of {fleet}")
    for i, r in enumerate(doc["runs"]):
        if r["metrics"] is not None and r["metrics_missing"] and (not same or r is runs[0]):
            want = ("step %d: " % (i + 1) if not same else "") + \
                ", ".join(r["metrics_missing"]) + " did not answer"
            check(want in notes, f"metrics line does not say '{want}'")


def check_metrics_off(doc, text):
    """--metrics off: the text says so, not "no /metrics from off"."""
    check("no /metrics from off" not in text, "the text says 'no /metrics from off'")
    if doc["config"]["metrics"] is None:
        check(all(r["metrics"] is None for r in doc["runs"]),
              "--metrics off but a run has metrics")
        check(re.search(r"^(admission|stages)\s+n/a \(--metrics off\)$", text, re.M),
              "--metrics off: the text has no 'n/a (--metrics off)'")


def interrupted_words(run, duration):
    """The text after "interrupted " of an interrupted run, as perf_report.c writes it."""
    if run["interrupted_in"] == "warmup":
        return "in the warm-up: nothing measured"
    if run["interrupted_in"] == "window":
        where = "%.3f s into the %.3f s window" % (run["window_s"], duration)
    else:
        where = "in the drain, after the %.3f s window" % run["window_s"]
    return (where + "; %d request(s) in flight then, not counted as answered, missing or "
            "errors" % run["in_flight_at_interrupt"])


def check_sweep_notes(doc, text):
    """The lines under a sweep's table: one per step for a shorter window (an interrupt, not
    judged; --requests), a generator more than 1 ms behind, malformed responses; no others."""
    conf = doc["config"]
    notes = re.findall(r"^step (\d+) +(.*)$", text, re.M)
    want = []
    for i, run in enumerate(doc["runs"]):
        step = str(i + 1)
        if run["interrupted"]:
            want.append((step, "interrupted " + interrupted_words(run, conf["duration_s"]) +
                         "; not judged"))
        elif run["window_s"] < conf["duration_s"] - 1e-6:
            check(run["sent"] == conf["max_requests"],
                  f"step {step}: a short window but --requests not reached")
            want.append((step, "window %.3f s of %.3f s: --requests %d reached" %
                         (run["window_s"], conf["duration_s"], conf["max_requests"])))
        if run["max_lag_ms"] > 1:
            want.append((step, "generator fell up to %.3f ms behind its schedule, p99 %.3f ms "
                         "(counted in the latency)" % (run["max_lag_ms"], run["lag_p99_ms"])))
        if run["proto_errors"] > 0:
            want.append((step, "malformed responses %d" % run["proto_errors"]))
    check(notes == want, f"sweep notes under the table: text {notes}, want {want}")
    shorter = any(r["window_s"] < conf["duration_s"] - 1e-6 for r in doc["runs"])
    m = re.search(r"^mediabatch-perf \S+: .*, (up to )?([\d.]+) s measured per step", text, re.M)
    if check(m, "sweep header has no 's measured per step'"):
        check(bool(m.group(1)) == shorter, "sweep header: 'up to' wrong")
        close(m.group(2), conf["duration_s"], 1, "sweep header duration")


def check_sweep_verdict(doc, text, verdict):
    """The verdict's wording: from the completed steps only after an interrupt; why the sweep
    stopped early, and the knee only where a step met the SLO."""
    sw, runs = doc["sweep"], doc["runs"]
    last = runs[-1]
    done = sum(1 for r in runs if not r["interrupted"])
    stopped = re.search(r"^\((stopped after|interrupted in) step (\d+) of (\d+): (.*)\)$",
                        text, re.M)
    if last["interrupted"]:
        if done:
            check(verdict.endswith("; from the %d completed step(s) only" % done),
                  f"verdict of an interrupted sweep: '{verdict}'")
        if check(stopped and stopped.group(1) == "interrupted in",
                 "an interrupted sweep does not say so under the verdict"):
            check(int(stopped.group(2)) == len(runs), "interrupted step number")
        return
    check("completed step" not in verdict, f"verdict of a whole sweep: '{verdict}'")
    if len(runs) == sw["steps"]:
        check(stopped is None, "a sweep that ran every step says it stopped")
        return
    if not check(stopped and stopped.group(1) == "stopped after",
                 "a sweep that stopped early does not say why"):
        return
    check(int(stopped.group(2)) == len(runs) and int(stopped.group(3)) == sw["steps"],
          "stopped line: step numbers")
    misses = 0
    for r in reversed(runs):
        if r["slo_met"]:
            break
        misses += 1
    if "show the knee" in stopped.group(4):
        check(sw["best_rps"] is not None, "'show the knee' but no step met the SLO")
        check(stopped.group(4).startswith("%d step(s) in a row missed the SLO" % misses),
              f"stopped line: '{stopped.group(4)}', {misses} misses in a row")
    elif "every step run missed the SLO" in stopped.group(4):
        check(sw["best_rps"] is None, "'every step missed' but one met the SLO")
    if sw["sweep_past"] and misses >= sw["sweep_past"]:
        check("missed the SLO" in stopped.group(4), "stopped by --sweep-past: not said")


# --csv: the columns in order (perf/mb_perf_report.h), each with the JSON value of its run
def csv_columns(statuses):
    return (["mode", "step", "offered_rps", "outstanding", "window_s", "sent", "responses",
             "missing", "unsent", "stray", "proto_errors", "throughput_rps", "ok_rps",
             "error_pct", "max_lag_ms", "slo_met", "latency_p50_ms", "latency_p90_ms",
             "latency_p99_ms", "latency_p99_9_ms", "latency_max_ms", "latency_min_ms",
             "latency_mean_ms", "latency_count"] +
            ["status_" + s for s in statuses] +
            ["batch_mean", "batch_max", "batch_count", "queue_us_mean", "queue_us_p50",
             "queue_us_p99", "compute_us_mean", "compute_us_p50", "compute_us_p99",
             "admission_wait_ms_mean", "admitted_batches", "units_in_use_mean",
             "units_in_use_max", "units_capacity", "stages_sum_ms"] +
            ["stage_%s_ms" % s for s in ("queue", "admission", "dispatch", "compute", "egress")] +
            ["batches_closed_" + c for c in ("full", "deadline", "drain")] +
            ["media_audio_sent", "media_video_sent", "lag_p99_ms", "interrupted",
             "interrupted_in", "in_flight_at_interrupt"])


def csv_expected(run, i):
    lat, met = run["latency_ms"], run["metrics"]
    v = {"mode": run["mode"], "step": i + 1,
         "slo_met": None if run["slo_met"] is None else 1 if run["slo_met"] else 0,
         "interrupted": 1 if run["interrupted"] else 0, "interrupted_in": run["interrupted_in"],
         "in_flight_at_interrupt": run["in_flight_at_interrupt"],
         "latency_count": lat["count"], "batch_mean": run["batch_size"]["mean"],
         "batch_max": run["batch_size"]["max"], "batch_count": run["batch_size"]["count"],
         "stages_sum_ms": run["stages_sum_ms"]}
    for key in ("offered_rps", "outstanding", "window_s", "sent", "responses", "missing",
                "unsent", "stray", "proto_errors", "throughput_rps", "ok_rps", "error_pct",
                "max_lag_ms", "lag_p99_ms"):
        v[key] = run[key]
    for key in ("p50", "p90", "p99", "p99_9", "max", "min", "mean"):
        v["latency_%s_ms" % key] = lat[key]
    for st, n in run["status"].items():
        v["status_" + st] = n
    for h in ("queue_us", "compute_us"):
        for key in ("mean", "p50", "p99"):
            v["%s_%s" % (h, key)] = run[h][key]
    for key in ("admission_wait_ms_mean", "admitted_batches", "units_in_use_mean",
                "units_in_use_max", "units_capacity"):
        v[key] = None if met is None else met[key]
    for s in ("queue", "admission", "dispatch", "compute", "egress"):
        st = None if run["stages"] is None else run["stages"][s]
        v["stage_%s_ms" % s] = None if st is None else st["mean_ms"]
    for c in ("full", "deadline", "drain"):
        v["batches_closed_" + c] = (None if run["batches_closed"] is None
                                    else run["batches_closed"][c])
    for kind in ("audio", "video"):
        v["media_%s_sent" % kind] = (None if run["media_sent"] is None
                                     else run["media_sent"][kind])
    return v


def check_csv(doc, path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))  # raises, and so fails, on what is not CSV
    statuses = list(doc["runs"][0]["status"].keys())
    cols = csv_columns(statuses)
    if not check(rows and rows[0] == cols, f"CSV header {rows[0] if rows else None}, "
                 f"documented {cols}"):
        return
    check(len(rows) - 1 == len(doc["runs"]),
          f"CSV has {len(rows) - 1} rows, JSON {len(doc['runs'])} runs")
    for i, (row, run) in enumerate(zip(rows[1:], doc["runs"])):
        check(len(row) == len(cols), f"CSV row {i + 1}: {len(row)} cells, {len(cols)} columns")
        want = csv_expected(run, i)
        for col, cell in zip(cols, row):
            w = want[col]
            if w is None:
                ok = cell == ""
            elif isinstance(w, str):
                ok = cell == w
            else:
                ok = cell != "" and float(cell) == float(w)
            check(ok, f"CSV row {i + 1} {col}: '{cell}', JSON {w}")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    mode = None
    if "--mode" in sys.argv:
        mode = sys.argv[sys.argv.index("--mode") + 1]
        args.remove(mode)
    if "--csv" in sys.argv:
        args.remove(sys.argv[sys.argv.index("--csv") + 1])
    text = open(args[0]).read()
    with open(args[1]) as f:
        doc = json.load(f)  # raises, and so fails, on anything that is not JSON

    for key in ("tool", "version", "mode", "config", "runs", "sweep", "histogram_precision",
                "plots"):
        check(key in doc, f"no top-level '{key}'")
    check(doc.get("tool") == "mediabatch-perf", "tool is not mediabatch-perf")
    if mode:
        check(doc["mode"] == mode, f"mode {doc['mode']}, expected {mode}")
    check(len(doc["runs"]) >= 1, "no runs")
    check(0 < doc["histogram_precision"] < 0.01, "histogram precision not under 1%")
    for i, run in enumerate(doc["runs"]):
        check_run(run, f"run {i + 1}", doc["config"])
    check(all(not r["interrupted"] for r in doc["runs"][:-1]),
          "a run before the last is interrupted")
    check_metrics_off(doc, text)
    check_metrics_source(doc, text)
    check_media(doc, text)
    check_fleet(doc, text)
    if "--csv" in sys.argv:
        check_csv(doc, sys.argv[sys.argv.index("--csv") + 1])

    if doc["mode"] != "sweep":
        run = doc["runs"][0]
        conf = doc["config"]
        m = re.search(r"^mediabatch-perf \S+: .*?, ([\d.]+) s measured( \(([^)]*)\))? after",
                      text, re.M)
        if check(m, "text header has no 's measured'"):
            close(m.group(1), run["window_s"], 1, "header: window measured")
            if run["interrupted"]:
                check(m.group(3) == "interrupted; %.1f s planned" % conf["duration_s"],
                      f"header of an interrupted run: '{m.group(2)}'")
            elif run["window_s"] < conf["duration_s"] - 1e-6:
                check(m.group(3) == "--requests %d reached; %.1f s planned" %
                      (conf["max_requests"], conf["duration_s"]),
                      f"header of a run --requests ended: '{m.group(2)}'")
            else:
                check(m.group(2) is None, f"header of a whole run: '{m.group(2)}'")
        m = re.search(r"^interrupted +(.*)$", text, re.M)
        if run["interrupted"]:
            if check(m, "interrupted run: no 'interrupted' line"):
                check(m.group(1) == interrupted_words(run, conf["duration_s"]),
                      f"interrupted line: '{m.group(1)}'")
        else:
            check(m is None, "an 'interrupted' line in a whole run")
        m = re.search(r"^throughput\s+([\d.]+) req/s answered, ([\d.]+) req/s OK "
                      r"\(offered ([\d.]+) req/s\)", text, re.M)
        if check(m, "text has no throughput line"):
            close(m.group(1), run["throughput_rps"], 1, "throughput")
            close(m.group(2), run["ok_rps"], 1, "OK throughput")
            close(m.group(3), run["offered_rps"], 1, "offered")
        m = re.search(r"^requests\s+sent (\d+), answered (\d+), missing (\d+), unsent (\d+), "
                      r"errors ([\d.]+)%, malformed (\d+)$", text, re.M)
        if check(m, "text has no requests line"):
            for g, key in zip(range(1, 5), ("sent", "responses", "missing", "unsent")):
                check(int(m.group(g)) == run[key], f"{key}: text {m.group(g)}, JSON {run[key]}")
            close(m.group(5), run["error_pct"], 3, "error %")
            check(int(m.group(6)) == run["proto_errors"],
                  f"malformed: text {m.group(6)}, JSON {run['proto_errors']}")
        m = re.search(r"^latency ms\s+p50 ([\d.]+)\s+p90 ([\d.]+)\s+p99 ([\d.]+)\s+"
                      r"p99\.9 ([\d.]+)\s+max ([\d.]+)\s+mean ([\d.]+)", text, re.M)
        if check(m, "text has no latency line"):
            for g, key in zip(range(1, 7), ("p50", "p90", "p99", "p99_9", "max", "mean")):
                close(m.group(g), run["latency_ms"][key], 3, f"latency {key}")
        m = re.search(r"^generator\s+fell up to ([\d.]+) ms behind its schedule, p99 ([\d.]+) ms",
                      text, re.M)
        check(run["max_lag_ms"] > 1 or m is None, "a generator line with max_lag_ms <= 1")
        if run["max_lag_ms"] > 1 and check(m, "text has no generator line (max_lag_ms > 1)"):
            close(m.group(1), run["max_lag_ms"], 3, "generator lag max")
            close(m.group(2), run["lag_p99_ms"], 3, "generator lag p99")
        m = re.search(r"^status\s+(.*)$", text, re.M)
        if check(m, "text has no status line"):
            shown = dict((k, int(v)) for k, v in re.findall(r"([A-Z_]+) (\d+)", m.group(1)))
            nonzero = dict((k, v) for k, v in run["status"].items() if v)
            check(shown == nonzero, f"statuses: text {shown}, JSON {nonzero}")
        m = re.search(r"^batch size\s+mean ([\d.]+), max (\d+)", text, re.M)
        if check(m, "text has no batch size line"):
            close(m.group(1), run["batch_size"]["mean"], 2, "batch mean")
            check(int(m.group(2)) == run["batch_size"]["max"], "batch max")
        m = re.search(r"^server side\s+queue_us mean (\d+) p50 (\d+) p99 (\d+); "
                      r"compute_us mean (\d+) p50 (\d+) p99 (\d+)", text, re.M)
        if check(m, "text has no server side line"):
            close(m.group(1), run["queue_us"]["mean"], 0, "queue_us mean")
            check(int(m.group(3)) == run["queue_us"]["p99"], "queue_us p99")
            close(m.group(4), run["compute_us"]["mean"], 0, "compute_us mean")
            check(int(m.group(6)) == run["compute_us"]["p99"], "compute_us p99")
        m = re.search(r"^admission\s+wait mean ([\d.]+) ms over (\d+) batches; units in use "
                      r"mean ([\d.]+), max (\d+) of (\d+)", text, re.M)
        if run["metrics"] is None:
            check(m is None and re.search(r"^admission\s+n/a", text, re.M),
                  "metrics null in JSON but not n/a in the text")
        elif check(m, "text has no admission line"):
            met = run["metrics"]
            close(m.group(1), met["admission_wait_ms_mean"], 3, "admission wait")
            close(m.group(2), met["admitted_batches"], 0, "admitted batches")
            close(m.group(3), met["units_in_use_mean"], 1, "units mean")
            close(m.group(5), met["units_capacity"], 0, "units capacity")
    else:
        sw = doc["sweep"]
        check(sw is not None, "sweep mode but no sweep object")
        rows = re.findall(r"^\s*(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+"
                          r"([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(met|-|n/a)\s*$", text,
                          re.M)
        check(len(rows) == len(doc["runs"]) == sw["steps_run"],
              f"sweep table has {len(rows)} rows, JSON {len(doc['runs'])} runs")
        for row, run in zip(rows, doc["runs"]):
            where = f"step {row[0]}"
            close(row[1], run["offered_rps"], 1, where + " offered")
            close(row[2], run["throughput_rps"], 1, where + " answered")
            close(row[3], run["ok_rps"], 1, where + " OK")
            close(row[4], run["latency_ms"]["p50"], 3, where + " p50")
            close(row[5], run["latency_ms"]["p99"], 3, where + " p99")
            close(row[6], run["latency_ms"]["p99_9"], 3, where + " p99.9")
            close(row[7], run["latency_ms"]["max"], 3, where + " max")
            close(row[8], run["error_pct"], 3, where + " errors")
            if run["interrupted"]:
                check(row[10] == "n/a" and run["slo_met"] is None,
                      where + ": an interrupted step is judged")
                continue
            check((row[10] == "met") == run["slo_met"], where + " SLO verdict")
            check(run["slo_met"] == (run["latency_ms"]["p99"] <= sw["slo_ms"] and
                                     run["error_pct"] <= sw["max_error_pct"] and
                                     run["responses"] > 0),
                  where + ": slo_met does not follow from p99 and errors")
        check_sweep_notes(doc, text)
        met = [r["offered_rps"] for r in doc["runs"] if r["slo_met"]]
        m = re.search(r"^highest offered rate with p99 <= ([\d.]+) ms and errors <= ([\d.]+)%: "
                      r"(none|[\d.]+)(?: req/s \(step (\d+):)?.*$", text, re.M)
        if check(m, "text has no 'highest offered rate' line"):
            close(m.group(1), sw["slo_ms"], 3, "SLO")
            if met:
                check(sw["best_rps"] == max(met), "best_rps is not the highest rate that met")
                close(m.group(3), sw["best_rps"], 1, "best rate")
                check(sw["best_index"] is not None and
                      doc["runs"][sw["best_index"]]["offered_rps"] == sw["best_rps"],
                      "best_index (from 0) is not the best step's index in runs")
                check(sw["best_step"] == sw["best_index"] + 1 and
                      m.group(4) == str(sw["best_step"]),
                      f"best_step {sw['best_step']} (from 1): text step {m.group(4)}, "
                      f"best_index {sw['best_index']}")
            else:
                check(m.group(3) == "none" and sw["best_rps"] is None and
                      sw["best_index"] is None and sw["best_step"] is None,
                      "no step met but a best rate is reported")
            check_sweep_verdict(doc, text, m.group(0))

    if "--plots" in sys.argv:
        p = doc["plots"]
        if check(p is not None, "--plots given but plots is null"):
            check("latency_cdf.dat" in p["files"] and "latency_cdf.gp" in p["files"],
                  "latency CDF data or script missing")
            if doc["mode"] == "sweep":
                check("sweep.dat" in p["files"], "sweep data missing")

    for p in problems:
        print("check_perf_report:", p)
    if not problems:
        print(f"check_perf_report: OK ({doc['mode']}, {len(doc['runs'])} run(s))")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
