#!/usr/bin/env python3
"""Turns the files bench/gateway/run.sh wrote into one Markdown report."""
import csv
import datetime
import json
import pathlib
import re
import sys

out = pathlib.Path(sys.argv[1])
clk_tck = int(sys.argv[2])


def load(name):
    p = out / name
    # strict=False: an upstream's HTML error page may put raw newlines in `first_error`.
    return json.loads(p.read_text(), strict=False) if p.exists() else None


def num(name, default=0.0):
    p = out / name
    return float(p.read_text().strip()) if p.exists() else default


lines = ["# Gateway benchmark (loopback, two upstream nodes)", ""]

# Throughput
lines += ["## Maximum throughput (closed loop)", "",
          "| target | round | concurrency | rps | p50 ms | p99 ms | errors | proxy CPU µs/request | of which user space |",
          "|---|---|---|---|---|---|---|---|---|"]


def tput_row(stem):
    r = load(f"{stem}.json")
    if r:
        per_request = 1e6 / clk_tck / max(r["requests"], 1)
        r["cpu_us"] = num(f"{stem}.cpu") * per_request
        r["user_us"] = num(f"{stem}.cpu-user") * per_request
    return r


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


direct_tput = tput_row("tput-direct")
if direct_tput:
    r = direct_tput
    lines.append(f"| direct (upstream a, no proxy) | — | {r['concurrency']} | {r['rps']:.0f} | "
                 f"{r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['errors']} | — | — |")
medians = {}
for t in ["keel", "nginx", "keel-tls", "nginx-tls"]:
    rounds = sorted((p for p in out.glob(f"tput-{t}-*.json") if re.fullmatch(rf"tput-{t}-\d+", p.stem)),
                    key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    rows = [tput_row(p.stem) for p in rounds]
    for i, r in enumerate(rows, 1):
        lines.append(f"| {t} | {i} | {r['concurrency']} | {r['rps']:.0f} | {r['p50_ms']:.3f} | "
                     f"{r['p99_ms']:.3f} | {r['errors']} | {r['cpu_us']:.1f} | {r['user_us']:.1f} |")
    if rows:
        medians[t] = (median([r["rps"] for r in rows]), median([r["cpu_us"] for r in rows]),
                      median([r["user_us"] for r in rows]))
        lines.append(f"| **{t}** | median | | **{medians[t][0]:.0f}** | | | | **{medians[t][1]:.1f}** | "
                     f"**{medians[t][2]:.1f}** |")
if "keel" in medians and "nginx" in medians:
    lines += ["", f"keel/nginx throughput ratio (medians): **{medians['keel'][0] / medians['nginx'][0]:.2f}**; "
              f"CPU per request ratio (keel/nginx): **{medians['keel'][1] / medians['nginx'][1]:.2f}**"]
if "keel-tls" in medians and "nginx-tls" in medians:
    lines += ["", f"TLS (same certificate): keel-tls/nginx-tls throughput ratio **{medians['keel-tls'][0] / medians['nginx-tls'][0]:.2f}**; "
              f"CPU per request ratio **{medians['keel-tls'][1] / medians['nginx-tls'][1]:.2f}**"]

# Latency
lines += ["", "## Latency at a fixed rate (open loop)", "",
          "| target | rate | p50 ms | p99 ms | max ms | success % | added p99 ms | peak RSS MiB |",
          "|---|---|---|---|---|---|---|---|"]
direct = load("lat-direct.json")
labels = {"direct": "direct (upstream a)", "keel-gw": "keel, `[executor] enabled = false`",
          "keel-tls": "keel TLS (`[proxy.tls]`, executor off)", "nginx-tls": "nginx TLS (`listen ssl`)"}
for t in ["direct", "keel", "keel-gw", "nginx", "keel-tls", "nginx-tls"]:
    r = load(f"lat-{t}.json")
    if not r:
        continue
    added = "—" if t == "direct" or not direct else f"{r['p99_ms'] - direct['p99_ms']:.3f}"
    rss = num(f"rss-{t}.kib") / 1024
    label = labels.get(t, t)
    lines.append(f"| {label} | {r['rate']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['max_ms']:.3f} | "
                 f"{r['success_pct']:.2f} | {added} | {rss:.1f} |")

# Streaming
stream_direct = load("stream-direct.json")
if stream_direct:
    lines += ["", "## Streamed completions (time to first token, upstream connections)", "",
              "| target | streams | in flight | TTFT p50 ms | TTFT p99 ms | added TTFT p50 / p99 ms | "
              "stream p50 ms | upstream connections opened per 1,000 streams | errors |",
              "|---|---|---|---|---|---|---|---|---|"]
    for t in ["direct", "keel", "nginx"]:
        r = load(f"stream-{t}.json")
        if not r:
            continue
        added = "—" if t == "direct" else \
            f"{r['ttft_p50_ms'] - stream_direct['ttft_p50_ms']:+.3f} / {r['ttft_p99_ms'] - stream_direct['ttft_p99_ms']:+.3f}"
        per_1000 = num(f"stream-{t}.conns") * 1000 / max(r["streams"] + r["errors"], 1)
        lines.append(f"| {labels.get(t, t)} | {r['streams']} | {r['concurrency']} | {r['ttft_p50_ms']:.3f} | "
                     f"{r['ttft_p99_ms']:.3f} | {added} | {r['stream_p50_ms']:.3f} | {per_1000:.1f} | {r['errors']} |")
        if r.get("first_error"):
            lines.append(f"|  | first error: {r['first_error']} | | | | | | | |")


def keel_dead_node_attempts():
    """Failed tries to node b while it was down, from /metrics sampled every 100 ms."""
    killed = num("failover-keel.killed")
    restarted = num("failover-keel.restarted")
    rows = []
    for line in (out / "failover-keel.metrics").read_text().split("\n"):
        parts = line.split()
        if len(parts) == 2:
            rows.append((float(parts[0]), float(parts[1])))
    pre = max([n for ts, n in rows if ts < killed] or [0.0])
    dead = [(ts, n) for ts, n in rows if killed <= ts <= restarted]
    if not dead:
        return 0, 0.0
    prev, last = pre, None
    for ts, n in dead:
        if n > prev:
            last, prev = ts, n
    return dead[-1][1] - pre, (last - killed) if last else 0.0


def nginx_dead_node_attempts(port):
    killed = num("failover-nginx.killed")
    restarted = num("failover-nginx.restarted")
    times = []
    for line in (out / "nginx" / "error.log").read_text(errors="replace").split("\n"):
        if f":{port}" not in line or "failed" not in line:
            continue
        m = re.match(r"(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)", line)
        if not m:
            continue
        ts = datetime.datetime.strptime(m.group(1), "%Y/%m/%d %H:%M:%S").timestamp()
        if killed - 1 <= ts <= restarted:
            times.append(ts)
    return (len(times), max(0.0, max(times) - killed) if times else 0.0,
            sorted(set(max(0, int(t - killed)) for t in times)))


if load("failover-keel.json") or load("failover-nginx.json"):
    lines += ["", "## Failover (node b killed at 1/3 of the run, restarted at 2/3)", "",
              "| target | requests | success % | client-visible errors | p99 ms | tries sent to the dead node | last one after the kill |",
              "|---|---|---|---|---|---|---|"]
for t in ["keel", "nginx"]:
    r = load(f"failover-{t}.json")
    if not r:
        continue
    if t == "keel":
        n, last = keel_dead_node_attempts()
        detail = f"≤ {last * 1000:.0f} ms (metrics sampled every 100 ms)"
    else:
        n, last, secs = nginx_dead_node_attempts(19002)
        detail = f"{last:.0f} s (error-log seconds after the kill with tries: {secs}; 1 s resolution)"
    lines.append(f"| {t} | {r['requests']} | {r['success_pct']:.3f} | {r['errors']} | {r['p99_ms']:.3f} | "
                 f"{n:.0f} | {detail} |")
    # Back on the restarted node?
    rows = list(csv.DictReader((out / f"failover-{t}.csv").open()))
    back = [int(x["second"]) for x in rows if "b=" in x["nodes"] and int(x["second"]) > len(rows) * 2 // 3]
    if back:
        lines.append(f"|  | node b serves again from second {back[0]} of the run | | | | | |")
    if r.get("first_error"):
        lines.append(f"|  | first error: {r['first_error']} | | | | | |")

lines += ["", "Raw results: `*.json`; per-second failover timelines: `failover-keel.csv`, `failover-nginx.csv`."]
print("\n".join(lines))
