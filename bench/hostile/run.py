#!/usr/bin/env python3
"""Hostile-user replay against the release binary: every case of the "blast radius" issue
and the classes around them, on loopback only, bounded in count and time.

    bench/hostile/run.sh                      # builds target/release/keel if missing
    BENCH_KEEL_BIN=target/debug/keel bench/hostile/run.sh

For each case it prints: requests tried, 5xx answers, dropped connections (a request that
got no HTTP answer where one was due), whether keel's main process was still alive and
ready afterwards, and the peak RSS of keel's main process and of its executor process
(sampled every 20 ms). Expected: no 5xx, no drop, no death, executor RSS under its
configured ceiling. The figures go into the README ("Hostile users").
"""

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

KEEL = os.environ.get("BENCH_KEEL_BIN", "target/release/keel")
ADMIN = "hostile-bench-admin-token"
TOKEN = "hostile-bench-access-token"
MEMORY_LIMIT_MB = 768


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def children(pid):
    """Processes whose parent is `pid` (the executor process is started by one of keel's
    threads, so /proc/<pid>/task/<pid>/children does not list it)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            out.append(int(entry))
    return out


class Keel:
    def __init__(self, extra=""):
        self.dir = tempfile.mkdtemp(prefix="keel-hostile-")
        self.control = free_port()
        self.proxy = free_port()
        self.upstream = Upstream()
        cfg = f"""data_dir = "{self.dir}/data"
shutdown_grace = "5s"
[control]
listen = "127.0.0.1:{self.control}"
admin_token = "{ADMIN}"
[proxy]
listen = "127.0.0.1:{self.proxy}"
[[proxy.nodes]]
name = "local"
base_url = "http://127.0.0.1:{self.upstream.port}/base"
[log]
level = "warn"
[executor]
pool_size = 2
execution_timeout = "3s"
memory_limit_mb = {MEMORY_LIMIT_MB}
access_tokens = ["{TOKEN}"]
[executor.rate_limit]
enabled = false
{extra}
"""
        self.config = os.path.join(self.dir, "keel.toml")
        with open(self.config, "w") as f:
            f.write(cfg)
        self.log = open(os.path.join(self.dir, "keel.log"), "w")
        # BENCH_KEEL_BIN would read as a KEEL_ config override: keel gets a clean environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KEEL_", "BENCH_KEEL_"))}
        self.proc = subprocess.Popen(
            [KEEL, "run", "--config", self.config], stdout=self.log, stderr=self.log, env=env
        )
        self.peak_main = 0
        self.peak_exec = 0
        self.exec_pids = set()
        self.stop_sampling = False
        for _ in range(600):
            if self.ready():
                break
            if self.proc.poll() is not None:
                sys.exit(f"keel exited at start: {open(self.log.name).read()}")
            time.sleep(0.1)
        threading.Thread(target=self.sample, daemon=True).start()

    def sample(self):
        while not self.stop_sampling:
            self.peak_main = max(self.peak_main, rss_kb(self.proc.pid))
            for c in children(self.proc.pid):
                self.exec_pids.add(c)
                self.peak_exec = max(self.peak_exec, rss_kb(c))
            time.sleep(0.02)

    def alive(self):
        return self.proc.poll() is None

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.control}/health/ready", timeout=2) as r:
                return r.status == 200
        except Exception:
            return False

    def stop(self):
        self.stop_sampling = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.upstream.close()
        # Its config, store and log: kept only when keel did not stop cleanly.
        if self.proc.returncode == 0:
            shutil.rmtree(self.dir, ignore_errors=True)


class Upstream:
    """A tiny HTTP/1.1 upstream: answers every request with 200 and the path it saw."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.paths = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.conn, args=(c,), daemon=True).start()

    def conn(self, c):
        buf = b""
        c.settimeout(5)
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin1").split("\r\n")
                self.paths.append(lines[0].split(" ")[1])
                length = 0
                for l in lines[1:]:
                    if l.lower().startswith("content-length:"):
                        length = int(l.split(":")[1])
                while len(buf) < length:
                    buf += c.recv(65536)
                buf = buf[length:]
                body = json.dumps({"path": lines[0].split(" ")[1]}).encode()
                c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        except OSError:
            return
        finally:
            c.close()

    def close(self):
        self.sock.close()


class Tally:
    def __init__(self):
        self.tried = 0
        self.status = {}
        self.dropped = 0
        self.notes = []
        self.failed = False

    def count(self, status):
        self.tried += 1
        if status is None:
            self.dropped += 1
        else:
            self.status[status] = self.status.get(status, 0) + 1

    def five_xx(self):
        return sum(n for s, n in self.status.items() if s >= 500)


def http(method, url, body=None, headers=None, timeout=30):
    """(status, parsed JSON or text) or (None, error) when no HTTP answer came."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None and "content-type" not in {k.lower() for k in (headers or {})}:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, raw
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except Exception as e:
        return None, str(e)


def codeblock(k, code, extra=None):
    body = {"input": {}, "codeBase64": base64.b64encode(code.encode()).decode()}
    body.update(extra or {})
    return http("POST", f"http://127.0.0.1:{k.control}/flow/codeblock", body, {"accessToken": TOKEN})


def raw_exchange(port, payload, read_for=2.0):
    """Sends raw bytes, returns everything read until close or `read_for` seconds."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_for)
    s.sendall(payload)
    out = b""
    deadline = time.time() + read_for
    try:
        while time.time() < deadline:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except OSError:
        pass
    s.close()
    return out


def statuses(raw):
    # A status line follows the previous answer's body directly (no line break after it).
    return [int(m.group(1)) for m in re.finditer(rb"HTTP/1\.1 (\d{3}) ", raw)]


EXECUTOR_CASES = [
    ("fetch timeout 1e300", "return fetch('http://example.test/', {timeout: 1e300}).then(() => 1, e => e.name)", None),
    ("axios timeout 1e300", "return require('axios').get('http://example.test/', {timeout: 1e300}).then(() => 1, e => 'err')", None),
    ("request timeout 1e30", "return 1", {"timeout": 1e30}),
    ("request timeout -5", "return 1", {"timeout": -5}),
    ("request timeout 'soon'", "return 1", {"timeout": "soon"}),
    ("16 x 256 MiB ArrayBuffer", "const a = []; for (let i = 0; i < 16; i++) { const b = new ArrayBuffer(256 * 1024 * 1024); new Uint8Array(b).fill(1); a.push(b); } return a.length", None),
    ("WebAssembly.Memory to 4 GiB", "const m = new WebAssembly.Memory({initial: 1, maximum: 65536}); m.grow(65535); return m.buffer.byteLength", None),
    ("typed arrays until refused", "const a = []; for (;;) a.push(new Float64Array(1 << 20));", None),
    ("heap bomb", "const a = []; while (true) a.push({x: new Array(1000).fill(1)});", None),
    ("string doubling", "let s = 'x'; for (;;) s += s;", None),
    ("endless loop", "while (true) {}", None),
    ("endless microtasks", "async function f() { for (;;) await null } return f()", None),
    ("deep recursion", "function f(n) { return f(n + 1) + 1 } return f(0)", None),
    ("sleep 1e300 ms", "return new Promise(r => setTimeout(r, 1e300))", None),
    ("getRandomValues 1 MiB", "crypto.getRandomValues(new Uint8Array(1 << 20)); return 1", None),
    ("console flood", "for (let i = 0; i < 1e5; i++) console.log('x'.repeat(1000)); return 1", None),
    ("fetch to 16 MiB URL", "return fetch('http://example.test/' + 'a'.repeat(1 << 24)).then(() => 1, e => e.name)", None),
    ("fetch to loopback", "return fetch('http://127.0.0.1:1/').then(() => 1, e => e.message)", None),
    ("fetch to [::ffff:127.0.0.1]", "return fetch('http://[::ffff:127.0.0.1]:1/').then(() => 1, e => e.message)", None),
    ("fetch to 6to4 of 10.0.0.1", "return fetch('http://[2002:a00:1::1]:1/').then(() => 1, e => e.message)", None),
]


def run_executor_cases(k, rows):
    for name, code, extra in EXECUTOR_CASES:
        t = Tally()
        rounds = 3
        for _ in range(rounds):
            status, _ = codeblock(k, code, extra)
            t.count(status)
        rows.append((f"executor: {name}", t, k))


def run_connection_cases(k, rows):
    # Slowloris: half a request head, then silence, on both listeners.
    for listener, port in (("proxy", k.proxy), ("control", k.control)):
        t = Tally()
        socks = []
        for _ in range(10):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            socks.append(s)
        # Others are not slowed meanwhile.
        status, _ = http("GET", f"http://127.0.0.1:{k.control}/health/ready", timeout=5)
        t.count(status)
        closed = 0
        deadline = time.time() + 90
        for s in socks:
            s.settimeout(max(0.1, deadline - time.time()))
            try:
                while s.recv(4096):
                    pass
                closed += 1
            except OSError:
                pass
            s.close()
        t.notes.append(f"{closed}/10 half-open connections closed by keel")
        rows.append((f"{listener}: slowloris x10", t, k))
    # Wrong admin tokens, as fast as one client goes, for 2 s.
    t = Tally()
    limited = 0
    end = time.time() + 2
    while time.time() < end:
        status, _ = http("GET", f"http://127.0.0.1:{k.control}/admin/api/nodes", headers={"authorization": "Bearer wrong-token-0123456789"}, timeout=5)
        t.count(status)
        if status == 429:
            limited += 1
    t.notes.append(f"{limited} answered 429")
    # 5xx here would be a fault; 401/429 are the point.
    rows.append(("control: wrong admin tokens for 2 s", t, k))


def run_input_cases(k, rows):
    t = Tally()
    bad_chunked = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                   b"transfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
    got = statuses(raw_exchange(k.proxy, bad_chunked))
    t.count(got[0] if got else None)
    t.notes.append(f"malformed chunked -> {got}")
    rows.append(("proxy: malformed chunked body", t, k))

    t = Tally()
    before = len(k.upstream.paths)
    for path in ("/v1/../../etc/passwd", "/v1/%2e%2e/%2e%2e/admin", "/v1/..%2f..%2fsecret"):
        status, _ = http("GET", f"http://127.0.0.1:{k.proxy}{path}")
        t.count(status)
    climbed = [p for p in k.upstream.paths[before:] if not p.startswith("/base/")]
    t.notes.append(f"upstream paths outside /base: {climbed}")
    rows.append(("proxy: '..' path segments", t, k))

    t = Tally()
    pipelined = b"".join(
        b"GET /v1/models?i=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5)
    )
    got = statuses(raw_exchange(k.proxy, pipelined, read_for=3))
    for i in range(5):
        t.count(got[i] if i < len(got) else None)
    rows.append(("proxy: 5 pipelined requests", t, k))

    t = Tally()
    for body in (b"{", b"[]", b'{"holder": 5}', b"x" * (2 << 20)):
        status, _ = http("POST", f"http://127.0.0.1:{k.control}/api/v1/locks/gpu_lock:0/acquire", body)
        t.count(status)
    for body in (b"[]", b'"s"', b'{"name": 1}'):
        status, _ = http("POST", f"http://127.0.0.1:{k.control}/flow/admin/tokens", body, {"authorization": f"Bearer {ADMIN}"})
        t.count(status)
    status, _ = http("GET", f"http://127.0.0.1:{k.control}/api/v1/locks/%ff%fe")
    t.count(status)
    rows.append(("control: malformed bodies and paths", t, k))


def run_store_case(rows):
    t = Tally()
    d = tempfile.mkdtemp(prefix="keel-hostile-store-")
    os.makedirs(f"{d}/data")
    open(f"{d}/data/keel.redb", "w").close()
    cfg = f'data_dir = "{d}/data"\n[control]\nlisten = "127.0.0.1:{free_port()}"\nadmin_token = "{ADMIN}"\n[proxy]\nlisten = "127.0.0.1:{free_port()}"\n[executor]\nenabled = false\n'
    with open(f"{d}/keel.toml", "w") as f:
        f.write(cfg)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEEL_", "BENCH_KEEL_"))}
    p = subprocess.Popen([KEEL, "run", "--config", f"{d}/keel.toml"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    try:
        p.wait(30)
        err = p.stderr.read().strip().splitlines()
        t.notes.append(f"refused to start (exit {p.returncode}): {err[-1][:90] if err else ''}")
        t.failed = p.returncode == 0
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        t.notes.append("STARTED on a zero-length store (a new store under the old name)")
        t.failed = True
    t.tried = 1
    t.notes.append(f"store still {os.path.getsize(f'{d}/data/keel.redb')} bytes")
    rows.append(("store: zero-length keel.redb at start", t, None))
    shutil.rmtree(d, ignore_errors=True)


def main():
    if not os.path.exists(KEEL):
        sys.exit(f"{KEEL} missing: build it first (cargo build --release)")
    rows = []
    k = Keel()
    deaths = []
    for run in (run_executor_cases, run_connection_cases, run_input_cases):
        run(k, rows)
        if not k.alive():
            deaths.append(run.__name__)
            k = Keel()
    run_store_case(rows)
    ready = k.ready()
    restarts = 0
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{k.control}/flow/status", timeout=5) as r:
            restarts = json.load(r)["executor"].get("processRestarts", 0)
    except Exception:
        pass
    k.stop()

    print(f"keel: {KEEL}; executor memory ceiling {MEMORY_LIMIT_MB} MiB")
    print(f"{'case':44} {'tried':>5} {'5xx':>4} {'dropped':>7}  answers / notes")
    total = Tally()
    for name, t, _ in rows:
        answers = " ".join(f"{s}x{n}" for s, n in sorted(t.status.items()))
        notes = "; ".join(t.notes)
        print(f"{name:44} {t.tried:>5} {t.five_xx():>4} {t.dropped:>7}  {answers} {notes}".rstrip())
        total.tried += t.tried
        total.dropped += t.dropped
        for s, n in t.status.items():
            total.status[s] = total.status.get(s, 0) + n
    print(f"{'total':44} {total.tried:>5} {total.five_xx():>4} {total.dropped:>7}")
    print(f"keel main process deaths: {len(deaths)} {deaths or ''}; ready at the end: {ready}")
    print(f"executor process restarts: {restarts}; executor processes seen: {len(k.exec_pids)}")
    print(f"peak RSS: main {k.peak_main / 1024:.1f} MiB, executor {k.peak_exec / 1024:.1f} MiB (ceiling {MEMORY_LIMIT_MB} MiB)")
    failed = [name for name, t, _ in rows if t.failed]
    if failed:
        print(f"cases that did not hold: {failed}")
    ok = total.five_xx() == 0 and total.dropped == 0 and not deaths and not failed and ready and k.peak_exec / 1024 <= MEMORY_LIMIT_MB
    print("RESULT:", "pass" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
