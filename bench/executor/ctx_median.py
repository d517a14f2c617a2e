"""The median context-creation time a keel reports, over sequential calls of one block.

    python3 bench/executor/ctx_median.py PORT CODE FIELD [CALLS]

FIELD is a `/flow/health` `memory` figure (`lastContextCreationMs`,
`lastContextWithLibrariesMs`). The executor sends its figures at most every 250 ms, so each
call's figure is read 0.3 s after it. Prints the median in ms, or "-" when this keel does
not report FIELD. Run against a keel with one isolate: with more, an idle worker's figure
from an earlier block could be the one reported.
"""
import base64
import json
import statistics
import sys
import time
import urllib.request

port, code, field = sys.argv[1], sys.argv[2], sys.argv[3]
calls = int(sys.argv[4]) if len(sys.argv) > 4 else 20
base = f"http://127.0.0.1:{port}/flow"
body = json.dumps({"input": {}, "codebase64": base64.b64encode(code.encode()).decode()}).encode()
seen = []
for _ in range(calls):
    req = urllib.request.Request(base + "/codeblock", body, {"content-type": "application/json", "accesstoken": "bench-token-123"})
    urllib.request.urlopen(req).read()
    time.sleep(0.3)
    v = json.load(urllib.request.urlopen(base + "/health"))["memory"].get(field)
    if v is None:
        print("-")
        sys.exit()
    seen.append(v)
print(round(statistics.median(seen), 3))
