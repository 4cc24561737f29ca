#!/usr/bin/env bash
# Planning benchmark: find every crate's unreleased commits (the commits
# since its newest release tag that touch its directory) in the workspace
# made by make_workspace.py, with each contender, and time it.
#
#   bench/setup.sh                          # once: git-cliff (bench/node_modules)
#   bench/make_workspace.py                 # once: bench/work/ws + crates.tsv
#   bench/plan_bench.sh [CONTENDER...]      # default: plan cdp gitlog gitcliff
#   bench/plan_bench.sh SNAPSHOT[:notags]... [CONTENDER...]
#
# A SNAPSHOT is a git directory with a real workspace's history (e.g.
# /work/.mirror/tokio-rs+tokio/repo, as the fetch tool leaves it). Each is
# cloned (hard links) to bench/work/real/NAME and checked out, files whose
# blobs the snapshot lacks left out (cargo metadata does not read them);
# ":notags" clones it without its tags, for a full-history plan. Its
# manifest (crate, directory, newest tag, git log pathspecs) is what
# `cdp plan --json` walks there, so every contender answers the same
# question. Default contenders there: plan gitlog gitcliff changelog full
# clifffull (see below).
#
# Environment: CDP (default build/cdp), RUNS (timed runs per contender, 3),
# WARMUP (an untimed pass first, 1; 0 = none),
# CLIFF_SUBSET (crates the git-cliff loop runs on, evenly spread over the
# manifest, 20; its time is scaled up to all crates), WS, MANIFEST, GIT_CLIFF,
# FULL_CRATE (the crate of the `full` and `clifffull` contenders; default
# the manifest's crate with the most release tags).
#
# Each timed pass is measured from its rusage (peak RSS of the largest
# process, in kB; user + system CPU of it and its children, to the
# microsecond) with the 1-minute load average noted; the median of
# the RUNS passes is reported and appended to bench/work/results.tsv
# (date, workspace, contender, crates, min, median, all crates, CPU, RSS, loads).
#
# A contender is a function contender_NAME that does one complete pass and
# prints "crate<TAB>commits" per crate it covered. Add one by writing the
# function and naming it on the command line. Outputs are kept in bench/work/out/LABEL/ and compared with the git log
# loop's, which is the reference.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
WS=${WS:-$HERE/work/ws}
MANIFEST=${MANIFEST:-$HERE/work/crates.tsv}
CDP=${CDP:-$ROOT/build/cdp}
RUNS=${RUNS:-3}
CLIFF_SUBSET=${CLIFF_SUBSET:-20}
GIT_CLIFF=${GIT_CLIFF:-$HERE/node_modules/.bin/git-cliff}
[ -x "$GIT_CLIFF" ] || GIT_CLIFF=$ROOT/node_modules/.bin/git-cliff
OUT=$HERE/work/out
RESULTS=$HERE/work/results.tsv
export GIT_CONFIG_NOSYSTEM=1

TIME=${TIME:-/usr/bin/time}
[ -x "$TIME" ] || { echo "no GNU time at $TIME: run bench/setup.sh" >&2; exit 2; }

# rusage FILE CMD...: run CMD and write "peak-RSS-kB user-s system-s" of it and
# its children to FILE. The peak RSS is GNU time's; the CPU is bash's `times`
# of the subshell (its only child is GNU time, which waits for CMD's whole
# tree), to the millisecond: GNU time prints CPU to 10 ms, a tenth of
# `cdp changelog --full` on a small crate.
rusage() {
	local file=$1
	shift
	(
		"$TIME" -f '%M' -o "$file.peak" "$@" && rc=0 || rc=$?
		times > "$file.times" # not in a pipe: a forked builtin sees no children
		exit "$rc"
	) || return
	awk -v peak="$(tail -n 1 "$file.peak")" '{
		split($1, u, /[ms]/); split($2, s, /[ms]/)
		printf "%d %.3f %.3f\n", peak, u[1] * 60 + u[2], s[1] * 60 + s[2]
	}' <(sed -n 2p "$file.times") > "$file"
}

# Rows of the manifest the contenders cover: never-released publish = false
# crates (column 5 "nopublish") are not walked by cdp plan, so no loop does
# them either. Columns: name, dir, newest tag or "-", git log pathspecs
# (default dir), flags.
rows() { awk -F'\t' '$5 != "nopublish"' "$MANIFEST"; }

# ---- contenders ------------------------------------------------------------

# One Repository:changes call for all crates, since = each crate's newest tag.
CDP_CHANGES_LUA='
local git = require "cdp.git"
local repo = assert(git.open(os.getenv("BENCH_WS")))
local names, paths, since = {}, {}, {}
for line in io.lines(os.getenv("BENCH_MANIFEST")) do
  local name, dir, tag, _, flags = (line .. "\t\t"):match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]*)\t([^\t]*)")
  if flags ~= "nopublish" then
    names[#names + 1], paths[#paths + 1] = name, dir == "." and "" or dir
    since[#since + 1] = tag ~= "-" and tag or false
  end
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
# the JSON, as a user runs it. Only cdp is timed: each crate's commit count (in
# manifest order) is read from the JSON afterwards (plan_counts).
PLAN_COUNTS='
import json, sys
counts = {c["name"]: len(c["commits"]) for c in json.load(open(sys.argv[1]))["crates"]}
for line in open(sys.argv[2]):
    name = line.split("\t")[0].strip()
    print("%s\t%d" % (name, counts.get(name, 0)))
'
contender_plan() {
	cd "$WS" && "$CDP" plan --json
}
plan_counts() {
	mv "$OUT/plan.tsv" "$OUT/plan.json"
	python3 -c "$PLAN_COUNTS" "$OUT/plan.json" <(rows) > "$OUT/plan.tsv"
}

# One `git log TAG..HEAD -- PATHSPEC...` per crate (the whole history when
# never released).
contender_gitlog() {
	local name dir tag specs range
	set -f
	while IFS=$'\t' read -r name dir tag specs _; do
		if [ "$tag" = - ]; then range=HEAD; else range=$tag..HEAD; fi
		# shellcheck disable=SC2086 # pathspecs are words
		printf '%s\t%s\n' "$name" "$(git -C "$WS" log --format='%H %s' "$range" -- ${specs:-$dir} | wc -l)"
	done < <(rows)
}

# The git-cliff regex for a crate's release tags (column 6 of a snapshot's
# manifest: the tag prefix before the version; default NAME-v).
# ("-" stays as it is: git-cliff matches nothing with "\-").
cliff_pattern() { printf '^%s[0-9]' "$(printf '%s' "${1:-$2-v}" | sed 's/[.[*+?(){}|^$\\]/\\&/g')"; }
cliff_paths() { [ "$1" = . ] && echo '**' || echo "$1/**"; }

# One git-cliff per crate, on CLIFF_SUBSET crates spread over the manifest:
# the unreleased section (what a plan's changelog adds).
contender_gitcliff() {
	local name dir tag prefix step=$(((CRATES + CLIFF_SUBSET - 1) / CLIFF_SUBSET))
	rows | awk -v step="$step" 'NR % step == 1 || step == 1' |
	while IFS=$'\t' read -r name dir tag _ _ prefix _; do
		printf '%s\t%s\n' "$name" "$("$GIT_CLIFF" -r "$WS" --include-path "$(cliff_paths "$dir")" \
			--tag-pattern "$(cliff_pattern "$prefix" "$name")" --unreleased 2> /dev/null | wc -l || echo FAILED)"
	done
}

# `cdp changelog --unreleased`: the new sections of every crate the plan
# releases, from one walk.
contender_changelog() {
	cd "$WS" && "$CDP" changelog --unreleased
}

# `cdp changelog --full FULL_CRATE`: every release of one crate, from one walk.
contender_full() {
	cd "$WS" && "$CDP" changelog --full "$FULL_CRATE"
}

# git-cliff's whole changelog of the same crate (every release its tags name).
contender_clifffull() {
	local name dir tag prefix
	IFS=$'\t' read -r name dir tag _ _ prefix _ < <(awk -F'\t' -v c="$FULL_CRATE" '$1 == c' "$MANIFEST")
	"$GIT_CLIFF" -r "$WS" --include-path "$(cliff_paths "$dir")" --tag-pattern "$(cliff_pattern "$prefix" "$name")"
}

# Nothing: what a pass costs the harness itself (a subshell, GNU time, bash -c),
# which every contender's wall time includes. Not a contender of its own
# unless named; the ratios are of the raw figures, this tells how much of a
# small one is the harness (8-10 ms: a quarter of `cdp changelog --full` on
# a small crate).
contender_noop() {
	:
}

# Crates a contender covers, for scaling its time to all crates.
covered() {
	case $1 in
	gitcliff) rows | awk -v step=$(((CRATES + CLIFF_SUBSET - 1) / CLIFF_SUBSET)) \
		'NR % step == 1 || step == 1' | wc -l ;;
	full | clifffull | noop) echo 1 ;;
	*) echo "$CRATES" ;;
	esac
}

# ---- timing ----------------------------------------------------------------

now() { date +%s.%N; }

# time_contender NAME: timed passes, each under rusage (the first one's output is
# kept); prints the fastest, the median and the median's peak RSS.
time_contender() {
	local name=$1 i t0 t1 load RUNS=$RUNS
	rm -f "$OUT/$name".*
	# One pass untimed first: the page cache warm (a fresh clone's packs are
	# not read yet) and git-cliff's own per-commit cache built, as on a
	# maintainer's machine after the first run.
	((${WARMUP:-1} == 0)) || bash -c "contender_$name" > /dev/null 2>&1 || true
	for ((i = 0; i < RUNS; i++)); do
		load=$(cut -d' ' -f1 /proc/loadavg)
		t0=$(now)
		if ((i == 0)); then
			rusage "$OUT/$name.rss" bash -c "contender_$name" > "$OUT/$name.tsv" 2> "$OUT/$name.err"
		else
			rusage "$OUT/$name.rss" bash -c "contender_$name" > /dev/null 2>&1
		fi
		t1=$(now)
		# wall, peak RSS, CPU (user + system, of the contender and its children), load
		printf '%s %s %s\n' "$(echo "$t1 - $t0" | bc -l)" \
			"$(tail -n 1 "$OUT/$name.rss" | awk '{printf "%d %.4f", $1, $2 + $3}')" "$load" >> "$OUT/$name.runs"
	done
	sort -n "$OUT/$name.runs" > "$OUT/$name.times"
	local min med rss cpu loads n scale
	min=$(head -n 1 "$OUT/$name.times" | cut -d' ' -f1)
	read -r med rss _ _ < <(sed -n "$(((RUNS + 1) / 2))p" "$OUT/$name.times")
	# The machine is shared: CPU time is the figure least moved by the load.
	cpu=$(cut -d' ' -f3 "$OUT/$name.runs" | sort -n | sed -n "$(((RUNS + 1) / 2))p")
	loads=$(cut -d' ' -f4 "$OUT/$name.runs" | paste -sd/)
	n=$(covered "$name")
	scale=$(echo "$CRATES / $n" | bc -l)
	case $name in full | clifffull | noop) scale=1 ;; esac # one crate, the same for both
	printf '%-10s runs=%d crates=%d min=%.3fs median=%.3fs all-crates(median)=%.3fs cpu(median)=%.3fs peak-rss=%dkB load=%s\n' \
		"$name" "$RUNS" "$n" "$min" "$med" "$(echo "$med * $scale" | bc -l)" "$cpu" "$rss" "$loads"
	echo "$med * $scale" | bc -l > "$OUT/$name.scaled"
	echo "$cpu * $scale" | bc -l > "$OUT/$name.cpuscaled"
	printf '%s\t%s\t%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t%s\n' "$(date -u +%FT%TZ)" "$LABEL" "$name" "$n" "$min" "$med" \
		"$(echo "$med * $scale" | bc -l)" "$cpu" "$rss" "$loads" >> "$RESULTS"
}

# ---- snapshots -------------------------------------------------------------

# prepare_snapshot SNAPSHOT[:notags]: a checkout of it under bench/work/real
# (kept between runs) and its manifest; sets WS, MANIFEST, LABEL, FULL_CRATE.
prepare_snapshot() {
	local snap=${1%:notags} name
	name=$(basename "$snap")
	[ "$name" = repo ] && name=$(basename "$(dirname "$snap")")
	[ "$1" = "$snap" ] || name=$name-notags
	WS=$HERE/work/real/$name
	if [ ! -e "$WS/.git" ]; then
		mkdir -p "$HERE/work/real"
		git clone -q --no-checkout $([ "$1" = "$snap" ] || echo --no-tags) "$snap" "$WS"
		# Snapshots may lack their largest blobs: leave those files out of the
		# work tree (cdp and git log read trees, cargo metadata manifests).
		local i missing
		for ((i = 0; i < 20; i++)); do
			missing=$(git -C "$WS" checkout -q -f HEAD 2>&1 |
				sed -n "s/.*unable to read sha1 file of \(.*\) (.*/\1/p; s/.*invalid object [0-9]* [0-9a-f]* for '\(.*\)'/\1/p")
			[ -n "$missing" ] || break
			{ [ -s "$WS/.git/info/sparse-checkout" ] || echo '/*'; printf '!/%s\n' $missing; } >> "$WS/.git/info/sparse-checkout"
			git -C "$WS" config core.sparseCheckout true
		done
	fi
	MANIFEST=$HERE/work/real/$name.tsv
	# The crates cdp plan walks there, with their newest tags and the git log
	# pathspecs of their files (a root crate: the root without the members).
	(cd "$WS" && "$CDP" plan --json) > "$HERE/work/real/$name.plan.json"
	python3 - "$HERE/work/real/$name.plan.json" "$WS" > "$MANIFEST" <<'PY'
import json, subprocess, sys
plan = json.load(open(sys.argv[1]))
crates = [c for c in plan["crates"] if c.get("walked")]
dirs = [c["dir"] for c in plan["crates"]]
tags = subprocess.run(["git", "-C", sys.argv[2], "tag"], capture_output=True, text=True).stdout.split()
for c in crates:
    d = c["dir"] or "."
    specs = d if d != "." else " ".join(["."] + [":(exclude)" + x for x in dirs if x])
    prefix = (c.get("tag_template") or plan.get("tag_template") or "{crate}-v{version}")
    prefix = prefix.split("{version}")[0].replace("{crate}", c["name"])
    n = sum(t.startswith(prefix) and t[len(prefix):][:1].isdigit() for t in tags)
    print("\t".join([c["name"], d, c.get("last_tag") or "-", specs, "-", prefix, str(n), str(len(c["commits"]))]))
PY
	LABEL=$name
	# The crate with the most release tags (the most commits when none has a tag).
	# awk reads to the end: `head -n 1` closing the pipe early could kill sort
	# (SIGPIPE), which pipefail and set -e turned into a silent exit on bevy.
	[ -n "${FULL_CRATE_ASKED:-}" ] || FULL_CRATE=$(sort -t$'\t' -k7,7nr -k8,8nr "$MANIFEST" | awk -F'\t' 'NR == 1 { print $1 }')
}

# ---- main ------------------------------------------------------------------

# run_workspace CONTENDER...: time each on WS/MANIFEST, then compare.
run_workspace() {
	[ -d "$WS/.git" ] || { echo "no workspace at $WS: run bench/make_workspace.py" >&2; exit 2; }
	mkdir -p "$OUT"
	# Results of earlier runs stay (contenders can be timed one at a time), but
	# only while they are about the same workspace, binary and FULL_CRATE (else
	# `full` of one crate was set against `clifffull` of another).
	local stamp
	stamp="$WS $(git -C "$WS" rev-parse HEAD) $(md5sum < "$MANIFEST") $(md5sum < "$CDP") ${FULL_CRATE:-}"
	[ "$(cat "$OUT/workspace" 2> /dev/null)" = "$stamp" ] || rm -f "$OUT"/*.*
	echo "$stamp" > "$OUT/workspace"
	CRATES=$(rows | wc -l)
	export WS MANIFEST CDP GIT_CLIFF OUT CLIFF_SUBSET CRATES FULL_CRATE CDP_CHANGES_LUA PLAN_COUNTS
	export -f rows cliff_pattern cliff_paths $(compgen -A function contender_)
	contenders=("$@")
	if [[ " ${contenders[*]} " == *" gitcliff "* || " ${contenders[*]} " == *" clifffull "* ]] && [ ! -x "$GIT_CLIFF" ]; then
		echo "no git-cliff at $GIT_CLIFF (bench/setup.sh): skipping it" >&2
		contenders=("${contenders[@]/gitcliff/}")
		contenders=("${contenders[@]/clifffull/}")
	fi

	echo "workspace: $WS ($(git -C "$WS" rev-list --count HEAD) commits, $(git -C "$WS" tag | wc -l) tags," \
		"$CRATES crates walked of $(wc -l < "$MANIFEST"))"
	echo "machine:   $(nproc) cpu, $(lscpu | sed -n 's/^Model name: *//p'), git $(git --version | cut -d' ' -f3)," \
		"cdp $(git -C "$ROOT" rev-parse --short HEAD), $(uptime | sed 's/.*load/load/')"
	for c in "${contenders[@]}"; do
		[ -n "$c" ] && time_contender "$c"
		[ "$c" != plan ] || plan_counts
	done
	compare
}

# agree A B: how many crates two contenders give the same commit count.
agree() {
	local same diff
	same=$(join -t$'\t' <(sort "$OUT/$1.tsv") <(sort "$OUT/$2.tsv") | awk -F'\t' '$2 == $3' | wc -l)
	diff "$OUT/$1.tsv" "$OUT/$2.tsv" > "$OUT/$2-vs-$1.diff" || true
	diff=$(join -t$'\t' <(sort "$OUT/$1.tsv") <(sort "$OUT/$2.tsv") | awk -F'\t' '$2 != $3 {print $1}' | paste -sd' ')
	echo "$2 and the $1 loop agree on $same crates' commit counts${diff:+; differ on: $diff (see $OUT/$2-vs-$1.diff)}"
}

ratio() { # ratio SLOWER FASTER: by wall time (median) and by CPU time (median)
	[ -s "$OUT/$1.scaled" ] && [ -s "$OUT/$2.scaled" ] &&
		printf '%s is %.1fx faster than %s (wall), %.1fx (CPU)\n' "$2" \
			"$(echo "$(cat "$OUT/$1.scaled") / $(cat "$OUT/$2.scaled")" | bc -l)" "$1" \
			"$(echo "$(cat "$OUT/$1.cpuscaled") / $(cat "$OUT/$2.cpuscaled")" | bc -l)"
	return 0
}

compare() {
	local c
	for c in full clifffull; do
		[ -s "$OUT/$c.tsv" ] && echo "$c: $(grep -c '^## ' "$OUT/$c.tsv") sections for $FULL_CRATE ($OUT/$c.tsv)"
	done
	[ -s "$OUT/plan.tsv" ] && [ -s "$OUT/gitlog.tsv" ] && agree gitlog plan
	[ -s "$OUT/cdp.tsv" ] && [ -s "$OUT/gitlog.tsv" ] && agree gitlog cdp
	ratio gitlog plan
	ratio gitcliff plan
	ratio gitlog cdp
	ratio gitcliff changelog
	ratio clifffull full
	return 0
}

snapshots=() contenders=()
for a in "$@"; do
	if [ -d "${a%:notags}" ]; then snapshots+=("$a"); else contenders+=("$a"); fi
done
FULL_CRATE_ASKED=${FULL_CRATE:-}
if [ ${#snapshots[@]} -eq 0 ]; then
	LABEL=${LABEL:-synthetic}
	OUT=$OUT/$LABEL
	[ ${#contenders[@]} -gt 0 ] || contenders=(plan cdp gitlog gitcliff)
	run_workspace "${contenders[@]}"
else
	[ ${#contenders[@]} -gt 0 ] || contenders=(plan gitlog gitcliff changelog full clifffull)
	for snap in "${snapshots[@]}"; do
		prepare_snapshot "$snap"
		OUT=$HERE/work/out/$LABEL
		run_workspace "${contenders[@]}"
		echo
	done
fi
