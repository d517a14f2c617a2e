#!/usr/bin/env bash
# Refreshes the dashboard's vendored libraries from the npm registry. Pinned versions live
# here and nowhere else; `cargo build` only embeds the files this script leaves behind, so
# building keel never needs Node. Run it by hand after bumping a version, then commit.
set -euo pipefail
cd "$(dirname "$0")"

PREACT=10.29.8
HTM=3.1.1
UPLOT=1.6.32

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "preact@$PREACT" "htm@$HTM" "uplot@$UPLOT" >/dev/null)
for pkg in "preact-$PREACT" "htm-$HTM" "uplot-$UPLOT"; do
  mkdir -p "$work/$pkg" && tar -xzf "$work/$pkg.tgz" -C "$work/$pkg" --strip-components=1
done

p="$work/preact-$PREACT" h="$work/htm-$HTM" u="$work/uplot-$UPLOT"
cp "$p/dist/preact.module.js" preact.module.js
cp "$p/hooks/dist/hooks.module.js" preact-hooks.module.js
cp "$p/LICENSE" LICENSE.preact
cp "$h/dist/htm.module.js" htm.module.js
cp "$h/LICENSE" LICENSE.htm
cp "$u/dist/uPlot.esm.js" uPlot.esm.js
cp "$u/dist/uPlot.min.css" uPlot.min.css
cp "$u/LICENSE" LICENSE.uplot
# Bare specifiers would need an inline import map, which the page's CSP forbids.
sed -i 's#from"preact"#from"./preact.module.js"#g' preact-hooks.module.js
# Source maps point at files we do not ship.
sed -i '/^\/\/# sourceMappingURL=/d' ./*.js
cat > VERSIONS <<V
preact $PREACT
htm $HTM
uplot $UPLOT
V
echo "vendored: preact $PREACT, htm $HTM, uplot $UPLOT"
