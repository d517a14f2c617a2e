#!/usr/bin/env bash
# Buffer and crypto hot paths, keel vs Node 20 in the same run: hot_paths.js inside one
# /flow/codeblock call of a running keel, and the same code under `node -e`.
#   bench/executor/hot_paths.sh PORT TOKEN     (run.sh calls it with its keel)
set -euo pipefail
cd "$(dirname "$0")"
PORT=$1 TOKEN=$2
python3 - "$PORT" "$TOKEN" <<'PY'
import base64, json, subprocess, sys, urllib.request
port, token = sys.argv[1], sys.argv[2]
code = open("hot_paths.js").read()
body = json.dumps({"input": {}, "codebase64": base64.b64encode(code.encode()).decode(), "timeout": 30000}).encode()
req = urllib.request.Request(f"http://127.0.0.1:{port}/flow/codeblock", body, {"content-type": "application/json", "accesstoken": token})
keel = json.load(urllib.request.urlopen(req))
if not keel.get("success"):
    sys.exit(f"keel: {keel}")
keel = keel["result"]
wrapped = "(async () => {\n" + code + "\n})().then((r) => process.stdout.write(JSON.stringify(r)))"
node = json.loads(subprocess.run(["node", "-e", wrapped], capture_output=True, text=True, check=True).stdout)
print(f"| {'hot path':<36} | {'keel':>8} | {'node':>8} | {'keel/node':>9} |")
print(f"|{'-'*38}|{'-'*10}|{'-'*10}|{'-'*11}|")
for k in node:
    print(f"| {k:<36} | {keel[k]:>8} | {node[k]:>8} | {keel[k] / max(node[k], 1):>8.2f}x |")
PY
