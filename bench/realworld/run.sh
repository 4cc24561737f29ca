#!/usr/bin/env bash
# Real-world agreement: plan with cdp at the commit before each release of
# real workspaces and compare with what their maintainers released.
#
#   bench/realworld/run.sh SNAPSHOT[=TOOL]...   measure each snapshot, then print the report
#   bench/realworld/run.sh --report             print the report of what is measured
#   bench/realworld/run.sh --events SNAPSHOT    list the release events read from a snapshot
#
# A SNAPSHOT is a git directory (bare or not) with the repository's tags, e.g.
# /work/.mirror/toml-rs+toml/repo; =TOOL (release-plz, smart-release,
# cargo-release, manual) overrides the tool read from each release.
# Environment: CDP (default build/cdp), SAMPLE (releases planned per
# repository, spread evenly over its history; 0 = all; default 30), OUT
# (results; default bench/work/realworld), FRESH=1 (plan again even where a
# plan by the same cdp binary is kept). Snapshots are only read: the plans
# run in OUT/NAME/work, a repository that borrows the snapshot's objects.
# Method, blind spots and how to read the figures: bench/realworld/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$(dirname "$HERE")")
OUT=${OUT:-$ROOT/bench/work/realworld}
SAMPLE=${SAMPLE:-30}
CDP=${CDP:-$ROOT/build/cdp}

usage() {
	sed -n '2,/^# Method/p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}

python3 -c 'import sys, tomllib; sys.exit(sys.version_info < (3, 11))' 2> /dev/null || {
	echo "run.sh needs python3 >= 3.11 (tomllib)" >&2
	exit 2
}

case ${1:-} in
"" | -h | --help) usage ;;
--report) exec python3 "$HERE/realworld.py" report --out "$OUT" ;;
--events)
	[ $# -eq 2 ] || usage
	exec python3 "$HERE/realworld.py" events "$2"
	;;
esac

fresh=()
[ "${FRESH:-0}" = 1 ] && fresh=(--fresh)
python3 "$HERE/realworld.py" measure --out "$OUT" --sample "$SAMPLE" --cdp "$CDP" "${fresh[@]}" "$@"
python3 "$HERE/realworld.py" report --out "$OUT"
