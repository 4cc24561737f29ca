#!/usr/bin/env python3
"""Build a large synthetic Cargo workspace history for the planning benchmark.

    bench/make_workspace.py [--commits N] [--out bench/work/ws]

What it makes (deterministic: same arguments, same repository):
  * 160 crates under crates/NAME (Cargo.toml + src/lib.rs), created in the
    first commit, plus 5 never-released crates (late-0..late-4) added in the
    last 2,000 commits;
  * N commits (default 100,000) on main, each touching 1-3 crates (a few
    hot crates take most changes) with Conventional Commit messages; every
    40th commit is the merge of a two-commit topic branch;
  * release tags {crate}-v{version} every 3,000 commits for one of four
    groups of crates, so each crate's newest release lies 0-12,000 commits
    back;
  * committer times one minute apart; then a repack and a commit-graph, as
    `git gc` leaves a real repository.

Unless --plain, also the shapes real workspaces have that hurt a planner
(issue 10): the root directory is a crate too (`umbrella`, over the member
crates nested below it, with an `include` list: its docs/ changes ship
nothing); 8 never-released `publish = false` crates (xtask, examples,
benches) changed all along the history; about 5% of messages with long
bodies (paragraphs, a list, trailers); a long-lived maintenance branch that
takes cherry-picks and reverts and is merged back every MAINT_EVERY commits;
most release tags annotated, and thousands of annotated tags of crates no
longer in the workspace (legacy-N-vX.Y.Z), so the tag list is large and
mostly about other crates.

It writes OUT/../crates.tsv: name, directory, newest tag ("-" when never
released), the pathspecs `git log` needs for the crate's shipped files, and
"nopublish" for never-released publish = false crates (cdp plan does not
walk them unless --all), which plan_bench.sh reads.
"""
import argparse
import os
import random
import subprocess
import sys

PREFIXES = ["core", "net", "io", "http", "json", "sql", "cli", "log", "fmt", "time",
            "sync", "fs", "cache", "auth", "codec", "proto", "rpc", "metrics", "trace", "test"]
SUFFIXES = ["", "-util", "-derive", "-macros", "-types", "-impl", "-sys", "-async"]
TYPES = ["feat", "fix", "fix", "chore", "docs", "refactor", "perf", "test", "feat", "fix"]
AUTHORS = [("Ada Lovelace", "ada@example.invalid"), ("Grace Hopper", "grace@example.invalid"),
           ("Ken Thompson", "ken@example.invalid"), ("Barbara Liskov", "barbara@example.invalid"),
           ("Edsger Dijkstra", "edsger@example.invalid")]
RELEASE_EVERY = 3000
GROUPS = 4
MERGE_EVERY = 40
LATE = 5
LATE_WINDOW = 2000
T0 = 1600000000
NOPUBLISH = ["xtask", "examples", "bench-harness", "fuzz", "test-support", "docs-gen", "ci-tools", "demo-app"]
ROOT = "umbrella"
LEGACY_TAGS = 3000
MAINT_EVERY = 5000
LONG_BODY = 0.05
WORDS = ("the a of in to and for with on is by crate change allocator buffer reader writer "
         "parser handle lock queue retry timeout decode encode stream frame error path span").split()


class Stream:
    def __init__(self, out):
        self.out = out
        self.mark = 0

    def w(self, s):
        self.out.write(s.encode())

    def data(self, s):
        b = s.encode()
        self.out.write(b"data %d\n" % len(b))
        self.out.write(b)
        self.out.write(b"\n")

    def commit(self, ref, when, author, message, parents, files, deletes=()):
        self.mark += 1
        name, email = author
        self.w(f"commit {ref}\nmark :{self.mark}\n")
        self.w(f"author {name} <{email}> {when} +0000\n")
        self.w(f"committer {name} <{email}> {when} +0000\n")
        self.data(message)
        if parents:
            self.w(f"from :{parents[0]}\n")
            for p in parents[1:]:
                self.w(f"merge :{p}\n")
        for path in deletes:
            self.w(f"D {path}\n")
        for path, content in sorted(files.items()):
            self.w(f"M 100644 inline {path}\n")
            self.data(content)
        self.w("\n")
        return self.mark

    def tag(self, name, mark, when=None, message=None):
        if when is None:
            self.w(f"reset refs/tags/{name}\nfrom :{mark}\n\n")
            return
        # An annotated tag: a tag object, as cargo-release and release-plz make.
        name_, email = AUTHORS[0]
        self.w(f"tag {name}\nfrom :{mark}\ntagger {name_} <{email}> {when} +0000\n")
        self.data(message)


def long_body(rng, n):
    """A long body: paragraphs, a bulleted list and trailers, as squash merges of big PRs have."""
    paras = []
    for _ in range(rng.randint(3, 8)):
        paras.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 120))) + ".")
    paras.append("\n".join(f"* item {n}.{i}: " + " ".join(rng.choice(WORDS) for _ in range(12))
                           for i in range(rng.randint(3, 10))))
    trailers = [f"Refs: #{n}", "Co-authored-by: Grace Hopper <grace@example.invalid>",
                "Signed-off-by: Ada Lovelace <ada@example.invalid>"]
    if rng.random() < 0.05:
        trailers.insert(0, f"BREAKING CHANGE: change {n} alters the public interface")
    return "\n\n".join(paras) + "\n\n" + "\n".join(trailers) + "\n"


def cargo_toml(name, version, extra=""):
    return f'[package]\nname = "{name}"\nversion = "{version}"\nedition = "2021"\n{extra}'


def root_toml(members):
    # The root crate ships only what `include` names; the members below it are
    # packages of their own, so their files are never the root crate's.
    return (cargo_toml(ROOT, "0.1.0", 'include = ["src/**", "README.md"]\n') +
            f'\n[workspace]\nmembers = [{", ".join(repr(m).replace(chr(39), chr(34)) for m in members)}]\n'
            'resolver = "2"\n')


def lib_rs(name, n):
    return (f"//! {name}\n\n/// Revision {n}.\npub fn revision() -> u64 {{\n    {n}\n}}\n\n"
            f"#[cfg(test)]\nmod tests {{\n    #[test]\n    fn it_works() {{\n"
            f"        assert_eq!(super::revision(), {n});\n    }}\n}}\n")


def generate(out, n_commits, seed, shapes=True):
    rng = random.Random(seed)
    s = Stream(out)
    crates = [p + x for p in PREFIXES for x in SUFFIXES]
    versions = {c: [0, 1, 0] for c in crates + [ROOT]}
    newest = {}
    # Zipf-like heat: a handful of crates take most of the changes.
    weights = [1.0 / (i + 8) for i in range(len(crates))]
    live = list(crates)
    live_weights = list(weights)
    late_at = {n_commits - LATE_WINDOW + i * (LATE_WINDOW // (LATE + 1)): f"late-{i}" for i in range(LATE)}
    dirs = {c: f"crates/{c}" for c in crates}

    files = {"Cargo.toml": '[workspace]\nmembers = ["crates/*"]\nresolver = "2"\n'}
    if shapes:
        files["Cargo.toml"] = root_toml(["crates/*", "xtask"])
        files["src/lib.rs"] = lib_rs(ROOT, 0)
        files["README.md"] = f"# {ROOT}\n"
        files["docs/guide.md"] = "# Guide\n"
        for c in NOPUBLISH:
            dirs[c] = "xtask" if c == "xtask" else f"crates/{c}"
            files[f"{dirs[c]}/Cargo.toml"] = cargo_toml(c, "0.0.0", "publish = false\n")
            files[f"{dirs[c]}/src/lib.rs"] = lib_rs(c, 0)
            live.append(c)
            live_weights.append(0.05)
    for c in crates:
        files[f"crates/{c}/Cargo.toml"] = cargo_toml(c, "0.1.0")
        files[f"crates/{c}/src/lib.rs"] = lib_rs(c, 0)
    tip = s.commit("refs/heads/main", T0, AUTHORS[0], "chore: initial workspace\n", [], files)
    count = 1
    clock = T0
    legacy_every = max(1, n_commits // LEGACY_TAGS)
    legacy = 0
    maint = None            # the maintenance branch's tip once forked
    maint_files = {}        # what it changed that main has not (merged back)
    maint_fix = []          # hotfix files added on it, reverted later

    def change(n, avoid=()):
        k = rng.choices([1, 2, 3], [0.6, 0.3, 0.1])[0]
        picked = []
        while len(picked) < k:
            c = rng.choices(live, live_weights)[0]
            if c not in picked and c not in avoid:
                picked.append(c)
        f = {}
        for c in picked:
            d = dirs.get(c, f"crates/{c}")
            if rng.random() < 0.1:
                f[f"{d}/src/m{n}.rs"] = f"pub const N: u64 = {n};\n"
            else:
                f[f"{d}/src/lib.rs"] = lib_rs(c, n)
        if shapes and rng.random() < 0.03:
            # The root crate: its source, its README, or docs it does not ship.
            f[rng.choice(["src/lib.rs", "README.md", "docs/guide.md"])] = f"{ROOT} revision {n}\n"
        t = rng.choice(TYPES)
        scope = f"({picked[0]})" if len(picked) == 1 else ""
        bang = "!" if rng.random() < 0.01 else ""
        msg = f"{t}{scope}{bang}: change {n} in {', '.join(picked)}\n"
        if shapes and rng.random() < LONG_BODY:
            msg += "\n" + long_body(rng, n)
        elif rng.random() < 0.3:
            msg += f"\nLonger explanation of change {n}.\n"
        return picked, f, msg

    def maint_commit(n, f, msg):
        # One commit on the maintenance branch: a cherry-pick of main's change
        # (main has it already), a hotfix of its own, or a revert of a hotfix.
        nonlocal maint, clock
        clock += 60
        r = rng.random()
        deletes = ()
        if r < 0.6:
            msg = msg.rstrip("\n") + f"\n\n(cherry picked from change {n} on main)\n"
        elif r < 0.8 or not maint_fix:
            c = rng.choice(crates)
            path = f"crates/{c}/src/hotfix{n}.rs"
            f = {path: f"pub const HOTFIX: u64 = {n};\n"}
            maint_fix.append((path, n))
            msg = f"fix({c}): hotfix {n} on the maintenance branch\n"
        else:
            path, m = maint_fix.pop(0)
            f, deletes = {}, (path,)
            msg = f'Revert "hotfix {m}"\n\nThis reverts the hotfix of change {m}.\n'
        if r >= 0.6 and f:
            maint_files.update(f)
        for d in deletes:
            maint_files.pop(d, None)
        maint = s.commit("refs/heads/maint", clock, rng.choice(AUTHORS), msg, [maint], f, deletes)

    release_no = 0
    pending = sorted(late_at.items())
    while count < n_commits:
        if pending and count >= pending[0][0]:
            _, name = pending.pop(0)
            clock += 60
            tip = s.commit("refs/heads/main", clock, rng.choice(AUTHORS), f"feat({name}): new crate\n", [tip],
                           {f"crates/{name}/Cargo.toml": cargo_toml(name, "0.1.0"),
                            f"crates/{name}/src/lib.rs": lib_rs(name, count)})
            live.append(name)
            live_weights.append(0.2)
            count += 1
            continue
        if shapes and count % MAINT_EVERY == 0 and maint is not None:
            # The long-lived branch merged back: its own hotfixes come in, its
            # cherry-picks and reverted hotfixes change nothing.
            clock += 60
            tip = s.commit("refs/heads/main", clock, rng.choice(AUTHORS), "Merge branch 'maint'\n",
                           [tip, maint], dict(maint_files))
            maint_files.clear()
            count += 1
        elif count % MERGE_EVERY == 0 and count + 4 <= n_commits:
            # A topic branch of two commits, one commit on main, then the merge.
            topic = tip
            topic_files = {}
            topic_crates = set()
            for _ in range(2):
                clock += 60
                picked, f, msg = change(count)
                topic_crates.update(picked)
                topic_files.update(f)
                topic = s.commit("refs/heads/topic", clock, rng.choice(AUTHORS), msg, [topic], f)
                count += 1
            clock += 60
            _, f, msg = change(count, avoid=topic_crates)
            tip = s.commit("refs/heads/main", clock, rng.choice(AUTHORS), msg, [tip], f)
            count += 1
            clock += 60
            tip = s.commit("refs/heads/main", clock, rng.choice(AUTHORS), f"Merge branch 'topic-{count}'\n",
                           [tip, topic], topic_files)
            count += 1
        else:
            clock += 60
            _, f, msg = change(count)
            tip = s.commit("refs/heads/main", clock, rng.choice(AUTHORS), msg, [tip], f)
            count += 1
            if shapes and maint is None and count >= MAINT_EVERY // 2:
                maint = tip
            elif shapes and maint is not None and count % 20 == 0:
                maint_commit(count, f, msg)
        if shapes and count % legacy_every == 0:
            # Tags of crates that left the workspace long ago: other crates' tags.
            legacy += 1
            s.tag(f"legacy-{legacy % 200}-v0.{legacy // 200}.0", tip, clock, f"legacy release {legacy}\n")
        if count % RELEASE_EVERY == 0:
            release_no += 1
            group = release_no % GROUPS
            for i, c in enumerate(crates + ([ROOT] if shapes else [])):
                if i % GROUPS == group:
                    v = versions[c]
                    v[2] += 1
                    name = f"{c}-v{v[0]}.{v[1]}.{v[2]}"
                    if shapes and rng.random() < 0.9:
                        s.tag(name, tip, clock, f"Release {name}\n\nSee the changelog.\n")
                    else:
                        s.tag(name, tip)
                    newest[c] = name
    rows = [(c, f"crates/{c}", newest.get(c, "-"), f"crates/{c}", "-") for c in crates]
    rows += [(late_at[a], f"crates/{late_at[a]}", "-", f"crates/{late_at[a]}", "-") for a in sorted(late_at)]
    if shapes:
        rows.append((ROOT, ".", newest.get(ROOT, "-"), "Cargo.toml src README.md", "-"))
        rows += [(c, dirs[c], "-", dirs[c], "nopublish") for c in NOPUBLISH]
    return rows, count


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=100000)
    ap.add_argument("--out", default=os.path.join(here, "work", "ws"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--plain", action="store_true",
                    help="the earlier workspace only (no root crate, publish = false crates, long bodies, "
                         "maintenance branch, annotated or legacy tags)")
    args = ap.parse_args()
    if os.path.exists(args.out):
        sys.exit(f"{args.out} exists; remove it first")
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1")
    subprocess.run(["git", "init", "-q", "-b", "main", args.out], check=True, env=env)
    fi = subprocess.Popen(["git", "-C", args.out, "fast-import", "--quiet"], stdin=subprocess.PIPE, env=env)
    rows, count = generate(fi.stdin, args.commits, args.seed, shapes=not args.plain)
    fi.stdin.close()
    if fi.wait() != 0:
        sys.exit("git fast-import failed")
    branches = ["topic"] + ([] if args.plain else ["maint"])
    for cmd in (["branch", "-q", "-D"] + branches, ["repack", "-adq"], ["commit-graph", "write", "--reachable"], ["reset", "-q", "--hard"]):
        subprocess.run(["git", "-C", args.out] + cmd, check=True, env=env)
    with open(os.path.join(os.path.dirname(args.out), "crates.tsv"), "w") as f:
        for row in rows:
            f.write("\t".join(row) + "\n")
    tags = subprocess.run(["git", "-C", args.out, "tag"], capture_output=True, env=env, check=True).stdout.count(b"\n")
    print(f"{args.out}: {count} commits, {len(rows)} crates, {sum(r[2] != '-' for r in rows)} released, {tags} tags")


if __name__ == "__main__":
    main()
