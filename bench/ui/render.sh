#!/usr/bin/env bash
# The web UI's two numbers from issue #13: the first load's size (the page, its script
# and its sheet, raw and gzip -9, which is what a compressing proxy would send; the
# agent itself serves them uncompressed), and how long headless Chromium takes to show
# the services page with 1,000 services (tests/tests/ui_browser.rs, render_1000_services:
# three loads, each timed from navigation to the 1,000th row, and the script's own
# table-building time).
#   bench/ui/render.sh            (debug build)
#   bench/ui/render.sh --release  (what docs/benchmarks.md should quote)
# Needs Debian's chromium and chromium-driver (scripts/test installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/setup.sh chromium chromium-driver

raw=0; gz=0
for f in agent/ui/index.html agent/ui/app.js agent/ui/app.css; do
  r=$(wc -c <"$f"); g=$(gzip -9c "$f" | wc -c)
  printf '%-22s %7d bytes, %6d gzip\n' "$f" "$r" "$g"
  raw=$((raw + r)); gz=$((gz + g))
done
printf '%-22s %7d bytes, %6d gzip\n' "first load" "$raw" "$gz"

cargo build --workspace --bins "$@"
cargo test -p shoal-tests --test ui_browser "$@" -- --ignored --nocapture render_1000_services \
  2>&1 | grep -E 'services page|skipping|panicked|test result'
