"""The Cargo workspace at a commit, read from the manifests' text (no cargo).

Reading history needs the workspace at hundreds of commits; running cargo at
each would take a checkout each. This reads the root manifest's `members` and
`exclude` globs and each member's `[package]` the way cargo resolves them
(inherited `version.workspace` and `publish.workspace`, an omitted version is
0.0.0 and unpublishable). Parsed manifests are cached by blob oid, so a
manifest that did not change between two commits is parsed once.
"""
import fnmatch
import posixpath
import tomllib


class Crate:
    __slots__ = ("name", "version", "publish", "dir", "inherits_version", "deps")

    def __init__(self, name, version, publish, dir, inherits_version, deps):
        self.name, self.version, self.publish, self.dir = name, version, publish, dir
        self.inherits_version, self.deps = inherits_version, deps


class Workspace:
    def __init__(self, crates, root_version, error=None, root=""):
        self.crates = crates            # name -> Crate
        self.root_version = root_version  # [workspace.package] version, or None
        self.error = error              # why there is no workspace, or None
        self.root = root                # the workspace's directory in the repository ("" = top)

    def by_dir(self):
        return {c.dir: c for c in self.crates.values()}


_parsed = {}


def parse_manifest(repo, blob_oid):
    """The manifest in blob BLOB_OID as a dict; {} when it is not TOML."""
    if blob_oid not in _parsed:
        data = repo.blob(blob_oid)
        try:
            _parsed[blob_oid] = tomllib.loads(data.decode()) if data is not None else {}
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            _parsed[blob_oid] = {}
    return _parsed[blob_oid]


def glob_match(pattern, path):
    """Cargo's member globs: `*` and `?` stay within one path component, `**` spans any."""
    pattern = posixpath.normpath(pattern.strip("/")) if pattern not in ("", ".") else "."
    pp, parts = pattern.split("/"), path.split("/") if path else ["."]

    def match(i, j):
        if i == len(pp):
            return j == len(parts)
        if pp[i] == "**":
            return any(match(i + 1, k) for k in range(j, len(parts) + 1))
        return j < len(parts) and fnmatch.fnmatchcase(parts[j], pp[i]) and match(i + 1, j + 1)

    return match(0, 0)


def _deps(manifest, ws_deps):
    """{crate name: requirement} of a manifest's normal and build dependencies
    (dev-dependencies are left out: they never force a release)."""
    found = {}

    def add(table):
        for key, spec in (table or {}).items():
            name, req = key, "*"
            if isinstance(spec, str):
                req = spec
            elif isinstance(spec, dict):
                if spec.get("workspace") is True:
                    inherited = ws_deps.get(key)
                    if isinstance(inherited, str):
                        req = inherited
                    elif isinstance(inherited, dict):
                        name = inherited.get("package", key)
                        req = inherited.get("version", "*")
                else:
                    name = spec.get("package", key)
                    req = spec.get("version", "*")
            found[name] = req

    add(manifest.get("dependencies"))
    add(manifest.get("build-dependencies"))
    for target in (manifest.get("target") or {}).values():
        if isinstance(target, dict):
            add(target.get("dependencies"))
            add(target.get("build-dependencies"))
    return found


def _crate(manifest, dir, ws_package, ws_deps):
    pkg = manifest.get("package")
    if not isinstance(pkg, dict) or not isinstance(pkg.get("name"), str):
        return None
    version, inherits = pkg.get("version"), False
    if isinstance(version, dict) and version.get("workspace") is True:
        version, inherits = ws_package.get("version"), True
    publish = pkg.get("publish", True)
    if isinstance(publish, dict) and publish.get("workspace") is True:
        publish = ws_package.get("publish", True)
    if version is None:  # cargo: an omitted version is 0.0.0 and never published
        version, publish = "0.0.0", False
    if not isinstance(version, str):
        return None
    publish = publish is True or (isinstance(publish, list) and len(publish) > 0)
    return Crate(pkg["name"], version, publish, dir, inherits, _deps(manifest, ws_deps))


def root_of(repo, manifests):
    """The workspace's directory: the top when it has a Cargo.toml, else the
    shallowest directory (two levels at most) whose Cargo.toml has a
    [workspace] (pavex kept its workspace in libs/ for a long time)."""
    if "Cargo.toml" in manifests:
        return ""
    for path in sorted(manifests, key=lambda p: (p.count("/"), p)):
        if path.count("/") > 2:
            break
        if isinstance(parse_manifest(repo, manifests[path]).get("workspace"), dict):
            return posixpath.dirname(path)
    return None


def at(repo, commit):
    """The Workspace at COMMIT."""
    manifests = repo.files(commit, "Cargo.toml")
    top = root_of(repo, manifests)
    if top is None:
        return Workspace({}, None, "no Cargo.toml at the repository root nor a workspace below it")
    prefix = top + "/" if top else ""
    root = parse_manifest(repo, manifests[prefix + "Cargo.toml"])
    ws = root.get("workspace")
    crates = {}
    if not isinstance(ws, dict):
        c = _crate(root, top, {}, {})
        if c:
            crates[c.name] = c
        return Workspace(crates, None, None if c else "the root Cargo.toml has no [package] or [workspace]", top)
    ws_package = ws.get("package") if isinstance(ws.get("package"), dict) else {}
    ws_deps = ws.get("dependencies") if isinstance(ws.get("dependencies"), dict) else {}
    members = [m for m in ws.get("members", []) if isinstance(m, str)]
    exclude = [e for e in ws.get("exclude", []) if isinstance(e, str)]
    c = _crate(root, top, ws_package, ws_deps)
    if c:
        crates[c.name] = c
    for path, oid in sorted(manifests.items()):
        dir = posixpath.dirname(path)
        if dir == top or not path.startswith(prefix):
            continue
        rel = dir[len(prefix):]
        if not any(glob_match(m, rel) for m in members):
            continue
        if any(glob_match(e, rel) or rel.startswith(e.rstrip("/") + "/") for e in exclude):
            continue
        c = _crate(parse_manifest(repo, oid), dir, ws_package, ws_deps)
        if c and c.name not in crates:
            crates[c.name] = c
    version = ws_package.get("version") if isinstance(ws_package.get("version"), str) else None
    return Workspace(crates, version, None, top)


def version_at(repo, commit, crate, root=""):
    """CRATE's manifest version at COMMIT, read from its directory (and the
    workspace manifest in ROOT when inherited); None when the manifest is not
    there or names another package."""
    path = "Cargo.toml" if crate.dir == "" else crate.dir + "/Cargo.toml"
    kind, data = repo.read("%s:%s" % (commit, path))
    if kind != "blob":
        return None
    try:
        manifest = tomllib.loads(data.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    pkg = manifest.get("package")
    if not isinstance(pkg, dict) or pkg.get("name") != crate.name:
        return None
    version = pkg.get("version")
    if isinstance(version, dict) and version.get("workspace") is True:
        kind, data = repo.read("%s:%sCargo.toml" % (commit, root + "/" if root else ""))
        try:
            root = tomllib.loads(data.decode()) if kind == "blob" else {}
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            return None
        version = ((root.get("workspace") or {}).get("package") or {}).get("version")
    return version if isinstance(version, str) else None
