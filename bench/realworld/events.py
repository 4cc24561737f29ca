"""Release events: which commit each real release was cut from and what it released.

An event is one release commit R and the crates released there, each with its
version and the tag (or manifest bump) that says so. See README.md "How a
release event is derived" for the rules and their blind spots; in short:

1. Every tag that points at a commit is read against the workspace at that
   commit. `{crate}-v{version}`, `{crate}-{version}`, `{crate}@{version}`,
   `{crate}/v{version}`, `{crate}_v{version}` (crate names also with `-` and
   `_` swapped) give the crate; `v{version}` and `{version}` give the crates
   whose manifest has that version. A tag counts only when the manifest at its
   commit has its version (build metadata aside): a tag is a release of what
   the manifest says.
2. Tags at one commit form one event: release-plz, cargo-smart-release and
   cargo-release tag every crate of a release on the same commit.
3. Crates that have no tag at all get events from the first-parent history
   of HEAD: a commit whose diff to its first parent raises a publishable
   crate's manifest version releases it at that version.
4. The plan point P is the first parent of the commit that brought the
   released versions into the manifests: walking R's first parents while the
   manifest still names the released version, the oldest such commit is the
   bump; for several crates, the newest of their bumps. A crate created at
   its released version before R (a first release) has no bump: it does not
   move P, which is R's parent when it is the only crate. A manifest bumped
   by hand earlier than that is the case cdp must call "already in the
   manifest".
5. The tool is read from R: its subject when a tool wrote it (smart-release's
   `Release a v1, b v2`, cargo-release's `chore: Release` and
   `(cargo-release) version`, release-plz's `chore: release` and
   `chore(crate): release v1.2.3`), else the configuration files in R's tree
   (release-plz.toml, release.toml, `[workspace.metadata.release]`); a
   release whose crates release-plz.toml marks `release = false` is manual.
"""
import re

import semver
import workspace

CRATE_SEPARATORS = ("-v", "-", "@v", "@", "/v", "/", "_v")

# The subjects the tools write themselves; a person's "Release tokio v0.1.20,
# tokio-timer v0.2.21, and remove ..." is not smart-release's.
SMART_RELEASE = re.compile(r"^Release [\w.-]+ v\d\S*(, [\w.-]+ v\d\S*)*(, safety bump \d+ crates?)?$")
CARGO_RELEASE = re.compile(r"^(\(cargo-release\) |chore: Release\b)")
RELEASE_PLZ = re.compile(r"^(chore: release|chore\([\w-]+\): release v\d\S*)( \(#\d+\))?$")

RELEASE_PLZ_CONFIGS = ("release-plz.toml", ".release-plz.toml")
CARGO_RELEASE_CONFIGS = ("release.toml", ".release.toml", ".cargo-release.toml")

TOOLS = ("release-plz", "smart-release", "cargo-release", "manual")


class Release:
    __slots__ = ("crate", "version", "tag", "source")

    def __init__(self, crate, version, tag, source):
        self.crate, self.version, self.tag, self.source = crate, version, tag, source

    def as_dict(self):
        return {"crate": self.crate, "version": self.version, "tag": self.tag, "source": self.source}


class Event:
    def __init__(self, commit):
        self.commit = commit          # R, a gitread.Commit
        self.releases = {}            # crate -> Release
        self.plan_at = None           # P, an oid
        self.bumped_at = None         # the commit that brought the versions in
        self.tool = None
        self.tool_reason = None
        self.note = None              # why the event cannot be planned, or None

    @property
    def time(self):
        return self.commit.time

    def as_dict(self):
        return {
            "commit": self.commit.oid, "subject": self.commit.subject, "time": self.commit.time,
            "plan_at": self.plan_at, "bumped_at": self.bumped_at, "tool": self.tool,
            "tool_reason": self.tool_reason, "note": self.note,
            "releases": [self.releases[k].as_dict() for k in sorted(self.releases)],
        }


def normalise(name):
    return name.replace("_", "-")


def read_tag(name, ws):
    """What tag NAME says about workspace WS (the workspace at its commit):
    ("crate", [(crate, version)]) for `{crate}<sep>{version}`, ("shared",
    [(crate, version)...]) for `v{version}` / `{version}` (every crate whose
    manifest has that version), ("unread", reason) for a tag that looks like
    a release tag but does not agree with the manifests, or None for a tag
    that is no release tag at all."""
    crates = ws.crates
    by_norm = {}
    for n in crates:
        by_norm.setdefault(normalise(n), []).append(n)
    # {crate}{sep}{version}: the longest crate name that leaves a version wins.
    best, unknown = None, None
    for sep in CRATE_SEPARATORS:
        i = name.rfind(sep)
        while i > 0:
            prefix, rest = name[:i], name[i + len(sep):]
            v = semver.parse(rest)
            if v is not None:
                unknown = unknown or prefix
                for crate in ([prefix] if prefix in crates else []) + by_norm.get(normalise(prefix), []):
                    if best is None or len(crate) > len(best[0]):
                        best = (crate, v)
            i = name.rfind(sep, 0, i)
    if best:
        crate, v = best
        mv = semver.parse(crates[crate].version)
        if mv is None or mv.release != v.release or mv.pre != v.pre:
            return "unread", "%s names %s %s but the manifest there says %s" % (
                name, crate, v, crates[crate].version)
        return "crate", [(crate, crates[crate].version)]
    # v{version} / {version}: every crate whose manifest has that version.
    text = name[1:] if name[:1] in ("v", "V") else name
    v = semver.parse(text)
    if v is None:
        if unknown and ws.error is None:
            return "unread", "%s: no crate named %s at its commit" % (name, unknown)
        return None
    found = []
    for crate in sorted(crates):
        mv = semver.parse(crates[crate].version)
        if mv is not None and mv.release == v.release and mv.pre == v.pre:
            found.append((crate, crates[crate].version))
    if not found:
        return "unread", "%s: no crate has version %s at its commit" % (name, v)
    return "shared", _lockstep(found, ws, v)


def _lockstep(found, ws, v):
    """Of the crates FOUND at version V, those a `v{version}` tag releases:
    with a [workspace.package] version V, the crates inheriting it (and the
    root crate); else the root crate when it is at V; else all of them. A
    crate that merely happens to be at 0.1.0 too is not released by v0.1.0."""
    root_v = semver.parse(ws.root_version) if ws.root_version else None
    root = [(c, x) for c, x in found if ws.crates[c].dir == ws.root]
    if root_v is not None and root_v.release == v.release and root_v.pre == v.pre:
        shared = [(c, x) for c, x in found if ws.crates[c].inherits_version]
        if shared:
            return sorted(set(shared + root))
    # Versions written out in each manifest (bevy's): all of them, less those
    # the release did not bump (see _drop_unbumped).
    return found


def _shared_owners(kind, found, own):
    """The crates a `v{version}` tag releases: of several crates at that
    version, those with tags of their own follow that convention instead
    (clap's v4.5.0 is clap's, clap_lex-v0.7.0 is clap_lex's); one crate, or
    none left, keeps them all."""
    if kind != "shared" or len(found) == 1:
        return found
    rest = [(c, v) for c, v in found if c not in own]
    return rest or found


def _publishable(found, ws):
    """A `v{version}` tag releases the publishable crates at that version
    (rig's examples share the workspace version under publish = false)."""
    kept = [(c, v) for c, v in found if ws.crates[c].publish]
    return kept or found


def _drop_unbumped(repo, ev, ws_r):
    """A `v{version}` tag names every crate at that version; of several, the
    ones whose manifest already had it at P were not released here (a crate
    that happens to be at 0.1.0 when v0.1.0 is tagged), as long as one of
    them was bumped. Returns how many were dropped."""
    shared = [c for c, rel in ev.releases.items() if rel.source == "shared tag"]
    if len(shared) < 2:
        return 0
    unbumped = [c for c in shared
                if workspace.version_at(repo, ev.plan_at, ws_r.crates[c], ws_r.root) == ev.releases[c].version]
    if len(unbumped) == len(shared):
        return 0
    for c in unbumped:
        del ev.releases[c]
    return len(unbumped)


def detect_tool(repo, ev, overrides):
    """Which tool made event EV, and from what (message or configuration)."""
    if overrides:
        return overrides, "given on the command line"
    subject = ev.commit.subject
    oid = ev.commit.oid
    plz_config = next((f for f in RELEASE_PLZ_CONFIGS if repo.has_path(oid, f)), None)
    cr_config = next((f for f in CARGO_RELEASE_CONFIGS if repo.has_path(oid, f)), None)
    if cr_config is None:
        root = workspace.parse_manifest(repo, repo.files(oid, "Cargo.toml").get("Cargo.toml", "0" * 40))
        for section in (root.get("workspace") or {}, root.get("package") or {}):
            if isinstance(section, dict) and isinstance(section.get("metadata"), dict) \
                    and "release" in section["metadata"]:
                cr_config = "Cargo.toml [metadata.release]"
    if SMART_RELEASE.match(subject):
        return "smart-release", "message 'Release <crate> v<version>...'"
    if CARGO_RELEASE.match(subject):
        return "cargo-release", "message %r" % subject[:40]
    if RELEASE_PLZ.match(subject) and not cr_config:
        return "release-plz", "message %r" % subject[:40]
    if plz_config:
        excluded = _release_plz_excluded(repo, oid, plz_config)
        if ev.releases and all(c in excluded for c in ev.releases):
            return "manual", "%s has release = false for %s" % (plz_config, ", ".join(sorted(ev.releases)))
        return "release-plz", plz_config
    if cr_config:
        return "cargo-release", cr_config
    return "manual", "no release tool's message or configuration"


def _release_plz_excluded(repo, oid, path):
    import tomllib
    data = repo.blob("%s:%s" % (oid, path))
    try:
        config = tomllib.loads(data.decode()) if data else {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return set()
    return {p.get("name") for p in config.get("package", []) if isinstance(p, dict) and p.get("release") is False}


def _bump_point(repo, ev, ws_at_r, limit=200):
    """The commit that brought EV's versions into the manifests (see 4. above)."""
    newest = None
    for crate, rel in ev.releases.items():
        c = ws_at_r.crates.get(crate)
        if c is None:
            continue
        oid, steps, bump, born = ev.commit.oid, 0, ev.commit.oid, False
        while steps < limit:
            commit = repo.commit(oid)
            if not commit.parents:
                break
            parent = commit.parents[0]
            before = workspace.version_at(repo, parent, c, ws_at_r.root)
            if before != rel.version:
                # born here (no member of that name at the parent), or moved here
                # at the same version (typos' lib split out of the root crate)
                if before is None and steps > 0:
                    there = workspace.at(repo, parent).crates.get(c.name)
                    born = there is None or there.version == rel.version
                break
            bump, oid, steps = parent, parent, steps + 1
        # A crate whose manifest was created at the released version before R
        # (toml_datetime split out at 0.5.0 a month before its first release),
        # or moved there without a version change, had no bump to undo: any
        # commit from then to R^ is a fair plan point for it, so it does not
        # pull P back before it existed where R has it.
        if born:
            continue
        # The newest bump is the one nearest R: the fewest first-parent steps.
        if newest is None or steps < newest[1]:
            newest = (bump, steps)
    return newest[0] if newest else ev.commit.oid


def untagged_bumps(repo, head, untagged):
    """{commit oid: {crate: version}}: manifest version raises on HEAD's first
    parents for the crates in UNTAGGED (names)."""
    import gitread
    out = gitread.run(repo.gitdir, "log", "--first-parent", "--diff-merges=first-parent", "--raw",
                      "--no-abbrev", "--format=%x00%H", head, "--", "*Cargo.toml")
    found = {}
    for chunk in out.split("\x00")[1:]:
        lines = chunk.strip("\n").split("\n")
        oid = lines[0].strip()
        ws_new = ws_old = None
        for line in lines[1:]:
            if not line.startswith(":"):
                continue
            meta, _, path = line.partition("\t")
            fields = meta.split()
            old_blob, new_blob = fields[2], fields[3]
            if set(new_blob) == {"0"}:
                continue
            new = workspace.parse_manifest(repo, new_blob)
            old = workspace.parse_manifest(repo, old_blob) if set(old_blob) != {"0"} else {}
            if path.endswith("Cargo.toml") and _ws_version(new) != _ws_version(old):
                # A shared version moved: every inheriting crate moves with it.
                commit = repo.commit(oid)
                if not commit.parents:
                    continue
                ws_new = ws_new or workspace.at(repo, oid)
                ws_old = ws_old or workspace.at(repo, commit.parents[0])
                for c in ws_new.crates.values():
                    if c.inherits_version and c.name in untagged:
                        _record_bump(found, oid, c, ws_old.crates.get(c.name))
            pkg = new.get("package") if isinstance(new.get("package"), dict) else {}
            name = pkg.get("name")
            if name in untagged and isinstance(pkg.get("version"), str):
                before = (old.get("package") or {}).get("version") if isinstance(old.get("package"), dict) else None
                ws_new = ws_new or workspace.at(repo, oid)
                c = ws_new.crates.get(name)
                if c is not None and isinstance(before, str):
                    nv, ov = semver.parse(c.version), semver.parse(before)
                    if nv and ov and ov < nv and c.publish:
                        found.setdefault(oid, {})[name] = c.version
    return found


def _ws_version(manifest):
    ws = manifest.get("workspace")
    pkg = ws.get("package") if isinstance(ws, dict) else None
    return pkg.get("version") if isinstance(pkg, dict) else None


def _record_bump(found, oid, crate, before):
    if not crate.publish or before is None:
        return
    nv, ov = semver.parse(crate.version), semver.parse(before.version)
    if nv and ov and ov < nv:
        found.setdefault(oid, {})[crate.name] = crate.version


def derive(repo, tool=None, log=None):
    """Every release event of REPO, oldest first, and the notes on tags that
    could not be read (for the report's blind-spot counts)."""
    notes = {"tags": 0, "release_tags": 0, "unread": [], "duplicates": 0, "untagged_crates": [],
             "bump_events": 0}
    by_commit = {}
    for name, _ref, oid in repo.tags():
        by_commit.setdefault(oid, []).append(name)
    notes["tags"] = sum(len(v) for v in by_commit.values())
    readings = []  # (commit, tag, kind, [(crate, version)])
    for n, (oid, names) in enumerate(sorted(by_commit.items())):
        if log and n % 100 == 0:
            log("reading tags: %d/%d commits" % (n, len(by_commit)))
        commit = repo.commit(oid)
        if commit is None:
            continue
        ws = workspace.at(repo, oid)
        for name in sorted(names):
            reading = read_tag(name, ws)
            if reading is None:
                continue
            kind, found = reading
            if kind == "unread":
                notes["unread"].append(found)
                continue
            if kind == "shared":
                found = _publishable(found, ws)
            notes["release_tags"] += 1
            readings.append((commit, name, kind, found))
    # A crate with tags of its own follows that convention: a `v{version}`
    # tag that happens to name its version too is another crate's release.
    own = {crate for _c, _t, kind, found in readings if kind == "crate" for crate, _v in found}
    readings = [(commit, name, kind, _shared_owners(kind, found, own)) for commit, name, kind, found in readings]
    events, seen = {}, {}
    tagged_crates = set()
    for commit, name, kind, found in readings:
        oid = commit.oid
        for crate, version in found:
            tagged_crates.add(crate)
            key = (crate, version)
            if key in seen and seen[key] != oid:
                # The same release tagged on two commits (a re-tag, or v1.0 and
                # foo-v1.0 apart): the older commit is the release.
                notes["duplicates"] += 1
                other = events[seen[key]]
                if (other.time, other.commit.oid) <= (commit.time, oid):
                    continue
                del other.releases[crate]
            ev = events.setdefault(oid, Event(commit))
            seen[key] = oid
            ev.releases.setdefault(crate, Release(crate, version, name, "tag" if kind == "crate" else "shared tag"))
    # Crates never tagged: their manifest bumps on HEAD's first parents.
    head = repo.head()
    ws_head = workspace.at(repo, head)
    untagged = {c.name for c in ws_head.crates.values() if c.publish and c.name not in tagged_crates}
    notes["untagged_crates"] = sorted(untagged)
    if untagged:
        for oid, crates in untagged_bumps(repo, head, untagged).items():
            ev = events.setdefault(oid, Event(repo.commit(oid)))
            for crate, version in crates.items():
                if (crate, version) not in seen:
                    seen[(crate, version)] = oid
                    ev.releases[crate] = Release(crate, version, None, "manifest bump")
                    notes["bump_events"] += 1
    result = []
    for oid, ev in events.items():
        if not ev.releases:
            continue
        ws_r = workspace.at(repo, oid)
        ev.bumped_at = _bump_point(repo, ev, ws_r)
        bumped = repo.commit(ev.bumped_at)
        if not bumped.parents:
            ev.note = "the release is the repository's first commit: nothing to plan from"
        else:
            ev.plan_at = bumped.parents[0]
            notes["coincidences"] = notes.get("coincidences", 0) + _drop_unbumped(repo, ev, ws_r)
        ev.tool, ev.tool_reason = detect_tool(repo, ev, tool)
        result.append(ev)
    result.sort(key=lambda e: (e.time, e.commit.oid))
    return result, notes


def sample(events, limit):
    """At most LIMIT events spread evenly over EVENTS (oldest to newest, both
    ends kept), in order; all of them when there are no more than LIMIT."""
    if limit <= 0 or len(events) <= limit:
        return list(events)
    if limit == 1:
        return [events[-1]]
    step = (len(events) - 1) / (limit - 1)
    return [events[round(i * step)] for i in range(limit)]
