#!/usr/bin/env bash
# `cdp plan` and `cdp changelog` print, byte for byte, what they printed before
# the walk, the tag reading, the message parser and the JSON encoder moved to C:
# the workspaces of tests/fixtures/plan_outputs.sh (deterministic commit ids),
# each run through the same commands, compared with the transcripts recorded in
# tests/e2e/plan_outputs/.
#
#   tests/e2e/plan_outputs.sh            compare (what ctest runs)
#   tests/e2e/plan_outputs.sh --record   write the transcripts with $CDP
#
# The transcripts were recorded with the cdp of commit afbff7f (main before the
# speed work); record again only for a change of behaviour that is meant, and
# read the diff of the transcripts in that commit.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
CDP=$(realpath "${CDP:-$here/build/cdp}")
export PATH=$HOME/.cargo/bin:$PATH
# cdp changelog heads a section with the date a release made now would carry: pin it, as
# reproducible builds do, so the transcripts do not change with the day they are made.
export SOURCE_DATE_EPOCH=1700000000
expected=$here/tests/e2e/plan_outputs
work=$(mktemp -d /tmp/cdp-plan-outputs.XXXXXX)
trap 'rm -rf "$work"' EXIT

bash "$here/tests/fixtures/plan_outputs.sh" "$work" > /dev/null 2>&1 ||
	{ bash "$here/tests/fixtures/plan_outputs.sh" "$work/again"; exit 1; }

# run ARGS...: one transcript entry, the command, its output (stdout then
# stderr) and its exit code.
run() {
	local code=0
	printf '$ cdp %s\n' "$*"
	"$CDP" "$@" > "$work/out" 2> "$work/err" || code=$?
	cat "$work/out" "$work/err"
	printf '[exit %d]\n\n' "$code"
}

crates() { "$CDP" plan --json | python3 -c 'import json,sys; print(" ".join(c["name"] for c in json.load(sys.stdin)["crates"]))'; }

transcript() { # transcript NAME EXTRA-COMMAND...
	local name=$1
	cd "$work/$name"
	run plan --json
	run plan
	for c in $(crates); do
		run plan --explain "$c"
	done
	run changelog
	run changelog --unreleased
	case $name in
	linear)
		run plan --json --from HEAD~6
		run plan --json --since HEAD~10
		run plan --json --prerelease rc
		run changelog core --prerelease rc
		run changelog nosuch
		run changelog --full core util
		run changelog --full
		run changelog --full core --unreleased
		run changelog --full nosuch
		;;
	prerelease)
		run plan --json --prerelease dev
		run changelog --prerelease dev
		run changelog p --unreleased
		run changelog --full p q
		;;
	esac
}

status=0
for name in linear merges prerelease rootcrate single; do
	transcript "$name" > "$work/$name.txt"
	if [ "${1:-}" = --record ]; then
		mkdir -p "$expected"
		cp "$work/$name.txt" "$expected/$name.txt"
		echo "recorded $expected/$name.txt"
	elif diff -u "$expected/$name.txt" "$work/$name.txt" > "$work/$name.diff"; then
		echo "ok - $name: the same bytes as recorded"
	else
		echo "FAIL - $name differs from tests/e2e/plan_outputs/$name.txt:"
		cat "$work/$name.diff"
		status=1
	fi
done
exit $status
