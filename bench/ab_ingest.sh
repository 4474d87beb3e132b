#!/usr/bin/env bash
# A/B of bench/ingest.py between two commits, interleaved (A, B, A, B, ...): this VM's
# speed drifts by tens of percent between minutes, so each side's runs share the hours.
#   bench/ab_ingest.sh BEFORE_REV AFTER_REV [RUNS=3] [IMAGES=5000]
# Each revision is checked out as a git worktree under /tmp; both use this checkout's
# .venv and bench/out (the generated images); figures go to bench/out/ab-<side>-<run>.json.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
before="$1" after="$2" runs="${3:-3}" images="${4:-5000}"
for side in before after; do
  rev="${!side}"
  dir="/tmp/smartray-ab-$side"
  rm -rf "$dir" && git -C "$here" worktree add -f "$dir" "$rev" >/dev/null 2>&1
  ln -sfn "$here/bench/out" "$dir/bench/out"
done
for i in $(seq 1 "$runs"); do
  for side in before after; do
    echo "=== $side run $i $(date +%T)"
    (cd "/tmp/smartray-ab-$side" && PYTHONPATH="/tmp/smartray-ab-$side" \
      "$here/.venv/bin/python" bench/ingest.py --images "$images" --blur-images 0 \
      --json "$here/bench/out/ab-$side-$i.json" 2>&1 | grep -E "blur=|ray.init")
  done
done
