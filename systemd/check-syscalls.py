#!/usr/bin/env python3
"""Checks that the unit's SystemCallFilter= allows every system call keel makes.

Runs keel under `strace -f` (threads and child processes) through a workload that touches
each component: startup with a warm executor, a code block, a GPU lock acquire/release, a
proxied request to a local upstream, metrics and the dashboard, SIGHUP (reload request) and
SIGTERM (drain, exit). Then expands the filter of systemd/keel.service with
`systemd-analyze syscall-filter` and prints every call keel made that the filter would
refuse (with SystemCallErrorNumber=EPERM it would fail instead of killing keel, but a
refused call is still a bug). Exit 0 when there is none.

    python3 systemd/check-syscalls.py [target/release/keel]

Needs strace and systemd-analyze (apt-get install strace systemd).
"""

import base64
import http.server
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
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNIT = os.path.join(ROOT, "systemd", "keel.service")
ADMIN = "check-syscalls-admin-token"
ACCESS = "check-syscalls-access-token"


def group(name):
    """Members of one systemd syscall group (nested groups expanded)."""
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter", "--no-pager", name],
        check=True, capture_output=True, text=True,
    ).stdout
    members = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        members |= group(item) if item.startswith("@") else {item}
    return members


def expand(items):
    names = set()
    for item in items:
        names |= group(item) if item.startswith("@") else {item}
    return names


def allowed_by_unit():
    """The unit's SystemCallFilter= lines: an allow list, then `~` lines removing from it."""
    allowed = set()
    for line in open(UNIT):
        line = line.strip()
        if not line.startswith("SystemCallFilter="):
            continue
        value = line.split("=", 1)[1]
        if value.startswith("~"):
            allowed -= expand(value[1:].split())
        else:
            allowed |= expand(value.split())
    return allowed


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Upstream(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = json.dumps({"id": "msg", "type": "message", "content": [],
                           "usage": {"input_tokens": 1, "output_tokens": 1}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *args):
        pass


def call(url, body=None, headers=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def main():
    keel = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release/keel")
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    work = tempfile.mkdtemp(prefix="keel-syscalls-")
    control, proxy = free_port(), free_port()
    config = os.path.join(work, "keel.toml")
    with open(config, "w") as f:
        f.write(f"""data_dir = "{work}/data"
drain_delay = "1s"
[control]
listen = "127.0.0.1:{control}"
admin_token = "{ADMIN}"
[proxy]
listen = "127.0.0.1:{proxy}"
[[proxy.nodes]]
name = "local"
base_url = "http://127.0.0.1:{upstream.server_address[1]}"
[ledger]
locks = ["gpu_lock:0"]
[executor]
pool_size = 2
access_tokens = ["{ACCESS}"]
""")
    trace = os.path.join(work, "strace.out")
    log = open(os.path.join(work, "keel.log"), "w")
    proc = subprocess.Popen(["strace", "-f", "-qq", "-o", trace, keel, "run", "--config", config],
                            stdout=log, stderr=log)
    base = f"http://127.0.0.1:{control}"
    for _ in range(1200):
        if proc.poll() is not None:
            sys.exit(f"keel exited early; see {work}/keel.log")
        try:
            if call(base + "/health/ready")[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)
    steps = [
        ("code block", call(base + "/flow/codeblock",
                            {"codeBase64": base64.b64encode(b"return [1,2,3].map(x => x * 2)").decode(),
                             "input": {}}, {"accessToken": ACCESS})),
        ("acquire", call(base + "/api/v1/locks/gpu_lock:0/acquire", {"holder": "check", "ttl_seconds": 30})),
    ]
    token = json.loads(steps[-1][1][1]).get("fencing_token")
    steps += [
        ("release", call(base + "/api/v1/locks/gpu_lock:0/release", {"fencing_token": token})),
        ("proxy", call(f"http://127.0.0.1:{proxy}/v1/messages",
                       {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]})),
        ("metrics", call(base + "/metrics")),
        ("dashboard", call(base + "/api/v1/overview", headers={"authorization": f"Bearer {ADMIN}"})),
    ]
    for name, (status, body) in steps:
        print(f"{name:>10}: {status}")
    # Signals go to keel itself, strace's child.
    with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
        keel_pid = int(f.read().split()[0])
    os.kill(keel_pid, signal.SIGHUP)
    time.sleep(1)
    os.kill(keel_pid, signal.SIGTERM)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.kill(keel_pid, signal.SIGKILL)
        sys.exit(f"keel did not stop on SIGTERM; see {work}/keel.log")
    upstream.shutdown()

    used = set()
    for line in open(trace):
        m = re.match(r"\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]", line)
        if m and not line.split(None, 1)[1].startswith(("+++", "---")):
            used.add(m.group(1))
    allowed = allowed_by_unit()
    refused = sorted(used - allowed)
    print(f"keel made {len(used)} distinct system calls; the unit's filter allows {len(allowed)}")
    if refused:
        print("refused by SystemCallFilter=:", " ".join(refused), f"(trace: {trace})")
        sys.exit(1)
    print("every call keel made is allowed (exit code of keel: %d)" % proc.returncode)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
