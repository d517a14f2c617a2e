#!/usr/bin/env bash
# Buffer and crypto hot paths, keel vs Node 20 in the same run: each path of hot_paths.js in
# its own /flow/codeblock call of a running keel, and under its own `node -e`.
#   bench/executor/hot_paths.sh PORT TOKEN     (run.sh calls it with its keel)
set -euo pipefail
cd "$(dirname "$0")"
PORT=$1 TOKEN=$2
python3 - "$PORT" "$TOKEN" <<'PY'
import base64, json, subprocess, sys, urllib.request
port, token = sys.argv[1], sys.argv[2]
code = open("hot_paths.js").read()

def keel(path):
    body = {"input": {} if path is None else {"path": path},
            "codebase64": base64.b64encode(code.encode()).decode(), "timeout": 30000}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/flow/codeblock", json.dumps(body).encode(),
                                 {"content-type": "application/json", "accesstoken": token})
    r = json.load(urllib.request.urlopen(req))
    if not r.get("success"):
        sys.exit(f"keel: {r}")
    return r["result"]

def node(path):
    wrapped = ("(async (input) => {\n" + code + "\n})(" + json.dumps({"path": path}) +
               ").then((r) => process.stdout.write(JSON.stringify(r)))")
    return json.loads(subprocess.run(["node", "-e", wrapped], capture_output=True, text=True, check=True).stdout)

print(f"| {'hot path':<36} | {'keel':>8} | {'node':>8} | {'keel/node':>9} |")
print(f"|{'-'*38}|{'-'*10}|{'-'*10}|{'-'*11}|")
for path in keel(None):
    k, n = keel(path), node(path)
    print(f"| {path:<36} | {k:>8} | {n:>8} | {k / max(n, 1):>8.2f}x |")
PY
