#!/usr/bin/env python3
"""Startup time (process start -> /health/ready 200) and idle RSS of keel (default config:
every component on, the executor's 4 V8 isolates warm; and with the executor off), side by side with
the peers a GPU box already runs (nginx, redis-server) measured in the same run.

Usage: cargo build --release && python3 bench/startup/run.py [--runs 5]
Loopback only; every process it starts is stopped before it exits.
"""
import argparse, os, shutil, signal, socket, subprocess, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEEL = os.path.join(ROOT, "target", "release", "keel")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_mib(pid):
    """RSS of a process and its children (nginx/redis fork workers), in MiB."""
    total = 0
    pids = [pid]
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        pids += [int(p) for p in out.split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def wait_http(url, limit=60):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter()
        except Exception:
            time.sleep(0.002)
    raise RuntimeError(f"{url} not ready")


def wait_tcp(port, limit=30):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return time.perf_counter()
        except OSError:
            time.sleep(0.002)
    raise RuntimeError(f"port {port} not open")


def keel_once(tmp, extra_env=None):
    control, proxy = free_port(), free_port()
    cfg = os.path.join(tmp, "keel.toml")
    with open(cfg, "w") as f:
        f.write(f'data_dir = "{tmp}/data"\n[control]\nlisten = "127.0.0.1:{control}"\n'
                f'admin_token = "bench-admin-token"\n[proxy]\nlisten = "127.0.0.1:{proxy}"\n[log]\nlevel = "warn"\n')
    t0 = time.perf_counter()
    env = dict(os.environ, **(extra_env or {}))
    p = subprocess.Popen([KEEL, "run", "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=env)
    t1 = wait_http(f"http://127.0.0.1:{control}/health/ready")
    time.sleep(3)
    rss = rss_mib(p.pid)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    return (t1 - t0) * 1000, rss


def nginx_once(tmp):
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"daemon off; worker_processes 1; pid {tmp}/nginx.pid; error_log {tmp}/err.log;\n"
                f"events {{}}\nhttp {{ access_log off; server {{ listen 127.0.0.1:{port}; "
                f"location / {{ return 200 'ok'; }} }} }}\n")
    t0 = time.perf_counter()
    p = subprocess.Popen(["nginx", "-c", conf, "-p", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t1 = wait_http(f"http://127.0.0.1:{port}/")
    time.sleep(3)
    rss = rss_mib(p.pid)
    p.send_signal(signal.SIGQUIT)
    p.wait(timeout=10)
    return (t1 - t0) * 1000, rss


def redis_once(tmp):
    port = free_port()
    t0 = time.perf_counter()
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
    t1 = wait_tcp(port)
    time.sleep(3)
    rss = rss_mib(p.pid)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=10)
    return (t1 - t0) * 1000, rss


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if not os.path.exists(KEEL):
        raise SystemExit("build first: cargo build --release")
    rows = []
    no_executor = lambda tmp: keel_once(tmp, {"KEEL_EXECUTOR__ENABLED": "false"})
    for name, fn, tool in [("keel", keel_once, None), ("keel, no executor", no_executor, None),
                           ("nginx 1 worker", nginx_once, "nginx"),
                           ("redis-server", redis_once, "redis-server")]:
        if tool and not shutil.which(tool):
            rows.append((name, None, None))
            continue
        starts, rsss = [], []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                s, r = fn(tmp)
                starts.append(s)
                rsss.append(r)
        rows.append((name, median(starts), median(rsss)))
    print(f"{'process':<18} {'start->ready ms (median of %d)' % args.runs:>32} {'idle RSS MiB':>14}")
    for name, s, r in rows:
        if s is None:
            print(f"{name:<18} {'not installed':>32}")
        else:
            print(f"{name:<18} {s:>32.1f} {r:>14.1f}")


if __name__ == "__main__":
    main()
