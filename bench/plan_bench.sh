#!/usr/bin/env bash
# Planning benchmark: find every crate's unreleased commits (the commits
# since its newest release tag that touch its directory) in the workspace
# made by make_workspace.py, with each contender, and time it.
#
#   bench/make_workspace.py                 # once: bench/work/ws + crates.tsv
#   bench/plan_bench.sh [CONTENDER...]      # default: plan cdp gitlog gitcliff
#
# Environment: CDP (default build/cdp), RUNS (timed runs per contender, 3),
# CLIFF_SUBSET (crates the git-cliff loop runs on, evenly spread over the
# manifest, 20; its time is scaled up to all crates), WS, MANIFEST, GIT_CLIFF.
#
# A contender is a function contender_NAME that does one complete pass and
# prints "crate<TAB>commits" per crate it covered. Add one by writing the
# function and naming it on the command line. Outputs are kept in bench/work/out/ and compared with the git log
# loop's, which is the reference.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
WS=${WS:-$HERE/work/ws}
MANIFEST=${MANIFEST:-$HERE/work/crates.tsv}
CDP=${CDP:-$ROOT/build/cdp}
RUNS=${RUNS:-3}
CLIFF_SUBSET=${CLIFF_SUBSET:-20}
GIT_CLIFF=${GIT_CLIFF:-$ROOT/node_modules/.bin/git-cliff}
OUT=$HERE/work/out
export GIT_CONFIG_NOSYSTEM=1

[ -d "$WS/.git" ] || { echo "no workspace at $WS: run bench/make_workspace.py" >&2; exit 2; }
mkdir -p "$OUT"
# Results of earlier runs stay (contenders can be timed one at a time), but
# only while they are about the same workspace.
stamp="$WS $(git -C "$WS" rev-parse HEAD) $(md5sum < "$MANIFEST")"
[ "$(cat "$OUT/workspace" 2> /dev/null)" = "$stamp" ] || rm -f "$OUT"/*
echo "$stamp" > "$OUT/workspace"
CRATES=$(wc -l < "$MANIFEST")

# ---- contenders ------------------------------------------------------------

# One Repository:changes call for all crates, since = each crate's newest tag.
CDP_CHANGES_LUA='
local git = require "cdp.git"
local repo = assert(git.open(os.getenv("BENCH_WS")))
local names, paths, since = {}, {}, {}
for line in io.lines(os.getenv("BENCH_MANIFEST")) do
  local name, dir, tag = line:match("^(%S+)\t(%S+)\t(%S+)$")
  names[#names + 1], paths[#paths + 1] = name, dir
  since[#since + 1] = tag ~= "-" and tag or false
end
local list, stats = assert(repo:changes { from = "HEAD", paths = paths, since = since })
local count = {}
for _, c in ipairs(list) do
  for _, i in ipairs(c.paths) do
    count[i] = (count[i] or 0) + 1
  end
end
for i, name in ipairs(names) do
  print(name .. "\t" .. (count[i] or 0))
end
io.stderr:write(("walked=%d trees=%d listed=%d\n"):format(stats.walked, stats.trees, #list))
'
contender_cdp() {
	BENCH_WS=$WS BENCH_MANIFEST=$MANIFEST "$CDP" -e "$CDP_CHANGES_LUA"
}

# The whole `cdp plan --json`: cargo metadata, release tags, the walk, the policy and
# the JSON, as a user runs it. Prints each crate's commit count in manifest order.
PLAN_COUNTS='
import json, sys
counts = {c["name"]: len(c["commits"]) for c in json.load(open(sys.argv[1]))["crates"]}
for line in open(sys.argv[2]):
    name = line.split("\t")[0].strip()
    print("%s\t%d" % (name, counts.get(name, 0)))
'
contender_plan() {
	(cd "$WS" && "$CDP" plan --json) > "$OUT/plan.json"
	python3 -c "$PLAN_COUNTS" "$OUT/plan.json" "$MANIFEST"
}

# One `git log TAG..HEAD -- DIR` per crate (the whole history when never released).
contender_gitlog() {
	local name dir tag range
	while IFS=$'\t' read -r name dir tag; do
		if [ "$tag" = - ]; then range=HEAD; else range=$tag..HEAD; fi
		printf '%s\t%s\n' "$name" "$(git -C "$WS" log --format='%H %s' "$range" -- "$dir" | wc -l)"
	done < "$MANIFEST"
}

# One git-cliff per crate, on CLIFF_SUBSET crates spread over the manifest.
contender_gitcliff() {
	local name dir tag step=$(((CRATES + CLIFF_SUBSET - 1) / CLIFF_SUBSET))
	awk -v step="$step" 'NR % step == 1 || step == 1' "$MANIFEST" |
	while IFS=$'\t' read -r name dir tag; do
		printf '%s\t%s\n' "$name" "$("$GIT_CLIFF" -r "$WS" --include-path "$dir/**" \
			--tag-pattern "^$name-v[0-9]" --unreleased --bumped-version 2> /dev/null || echo FAILED)"
	done
}

# Crates a contender covers, for scaling its time to all crates.
covered() {
	case $1 in
	gitcliff) awk -v step=$(((CRATES + CLIFF_SUBSET - 1) / CLIFF_SUBSET)) \
		'NR % step == 1 || step == 1' "$MANIFEST" | wc -l ;;
	*) echo "$CRATES" ;;
	esac
}

# ---- timing ----------------------------------------------------------------

now() { date +%s.%N; }

# time_contender NAME: timed passes (the first one's output is kept); prints
# the fastest and the median.
time_contender() {
	local name=$1 i t0 t1 times=() RUNS=$RUNS
	rm -f "$OUT/$name".*
	for ((i = 0; i < RUNS; i++)); do
		t0=$(now)
		if ((i == 0)); then
			"contender_$name" > "$OUT/$name.tsv" 2> "$OUT/$name.err"
		else
			"contender_$name" > /dev/null 2>&1
		fi
		t1=$(now)
		times+=("$(echo "$t1 - $t0" | bc -l)")
	done
	printf '%s\n' "${times[@]}" | sort -n > "$OUT/$name.times"
	local min med n scale
	min=$(head -n 1 "$OUT/$name.times")
	med=$(sed -n "$(((RUNS + 1) / 2))p" "$OUT/$name.times")
	n=$(covered "$name")
	scale=$(echo "$CRATES / $n" | bc -l)
	printf '%-10s runs=%d crates=%d min=%.3fs median=%.3fs all-crates(median)=%.3fs\n' \
		"$name" "$RUNS" "$n" "$min" "$med" "$(echo "$med * $scale" | bc -l)"
	echo "$med * $scale" | bc -l > "$OUT/$name.scaled"
}

# ---- main ------------------------------------------------------------------

contenders=("$@")
[ ${#contenders[@]} -gt 0 ] || contenders=(plan cdp gitlog gitcliff)
if [[ " ${contenders[*]} " == *" gitcliff "* ]] && [ ! -x "$GIT_CLIFF" ]; then
	echo "no git-cliff at $GIT_CLIFF: skipping it" >&2
	contenders=("${contenders[@]/gitcliff/}")
fi

echo "workspace: $WS ($(git -C "$WS" rev-list --count HEAD) commits, $CRATES crates)"
echo "machine:   $(nproc) cpu, $(lscpu | sed -n 's/^Model name: *//p'), git $(git --version | cut -d' ' -f3)"
for c in "${contenders[@]}"; do
	[ -n "$c" ] && time_contender "$c"
done

if [ -s "$OUT/cdp.tsv" ]; then
	env BENCH_WS="$WS" BENCH_MANIFEST="$MANIFEST" /usr/bin/time -v "$CDP" -e "$CDP_CHANGES_LUA" \
		> /dev/null 2> "$OUT/cdp.time-v"
	echo "cdp peak RSS: $(sed -n 's/.*Maximum resident set size (kbytes): //p' "$OUT/cdp.time-v") kB;" \
		"$(grep -m1 '^walked=' "$OUT/cdp.err")"
fi
if [ -s "$OUT/plan.tsv" ]; then
	(cd "$WS" && /usr/bin/time -v "$CDP" plan --json) > /dev/null 2> "$OUT/plan.time-v"
	echo "cdp plan peak RSS: $(sed -n 's/.*Maximum resident set size (kbytes): //p' "$OUT/plan.time-v") kB"
	if [ -s "$OUT/gitlog.tsv" ]; then
		if diff "$OUT/gitlog.tsv" "$OUT/plan.tsv" > "$OUT/plan-vs-gitlog.diff"; then
			echo "cdp plan and the git log loop agree on every crate's commit count"
		else
			echo "cdp plan and the git log loop differ: see $OUT/plan-vs-gitlog.diff"
		fi
	fi
	for c in gitlog gitcliff; do
		[ -s "$OUT/$c.scaled" ] &&
			printf 'cdp plan is %.1fx faster than the %s loop\n' \
				"$(echo "$(cat "$OUT/$c.scaled") / $(cat "$OUT/plan.scaled")" | bc -l)" "$c"
	done
fi
if [ -s "$OUT/cdp.tsv" ] && [ -s "$OUT/gitlog.tsv" ]; then
	if diff "$OUT/gitlog.tsv" "$OUT/cdp.tsv" > "$OUT/cdp-vs-gitlog.diff"; then
		echo "cdp and the git log loop agree on every crate's commit count" \
			"($(awk -F'\t' '{s += $2} END {print s}' "$OUT/cdp.tsv") attributions)"
	else
		echo "cdp and the git log loop differ: see $OUT/cdp-vs-gitlog.diff"
	fi
	for c in gitlog gitcliff; do
		[ -s "$OUT/$c.scaled" ] && [ -s "$OUT/cdp.scaled" ] &&
			printf 'cdp is %.1fx faster than the %s loop\n' \
				"$(echo "$(cat "$OUT/$c.scaled") / $(cat "$OUT/cdp.scaled")" | bc -l)" "$c"
	done
fi
