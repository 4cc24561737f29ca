-- cdp.fs against the real filesystem and the system's own tools.
local fs = require "cdp.fs"
local support = require "tests.lua.support"
local q = support.quote

local function trim(s)
  return (s:gsub("%s+$", ""))
end

-- Three results of a failure: nil, "CODE: ...: thing", "CODE".
local function fails(code, thing, ok, msg, got)
  assert.is_nil(ok)
  assert.are.equal(code, got)
  assert.is_truthy(msg:find("^" .. code .. ": "), msg)
  if thing then
    assert.is_truthy(msg:find(thing, 1, true), msg)
  end
end

describe("cdp.fs", function()
  local dir
  before_each(function()
    dir = support.tmpdir()
  end)

  describe("read", function()
    it("returns the bytes of a file, NULs and all", function()
      local data = "a\0b\n" .. ("x"):rep(200000)
      support.write(dir .. "/f", data)
      assert.are.equal(data, fs.read(dir .. "/f"))
      support.write(dir .. "/empty", "")
      assert.are.equal("", fs.read(dir .. "/empty"))
    end)

    it("names a missing file with ENOENT and a directory with EISDIR", function()
      local ok, msg, code = fs.read(dir .. "/nope")
      fails("ENOENT", dir .. "/nope", ok, msg, code)
      assert.are.equal("ENOENT: no such file or directory: " .. dir .. "/nope", msg)
      fails("EISDIR", dir, fs.read(dir))
    end)

    it("raises on misuse", function()
      assert.has_error(function() fs.read() end)
      assert.has_error(function() fs.read({}) end)
    end)
  end)

  describe("write", function()
    it("creates and replaces a file atomically, leaving no temp files", function()
      local p = dir .. "/out.txt"
      assert.is_true(fs.write(p, "first"))
      local ino = fs.stat(p).ino
      assert.is_true(fs.write(p, "second"))
      assert.are.equal("second", support.read(p))
      -- replaced by rename, not rewritten in place
      assert.are_not.equal(ino, fs.stat(p).ino)
      assert.are.same({ "out.txt" }, fs.list(dir))
    end)

    it("sets the mode given as an integer or an octal string", function()
      fs.write(dir .. "/a", "x", { mode = tonumber("600", 8) })
      fs.write(dir .. "/b", "x", { mode = "0750" })
      fs.write(dir .. "/c", "x")
      assert.are.equal("600", trim(support.sh("stat -c %a " .. q(dir .. "/a"))))
      assert.are.equal("750", trim(support.sh("stat -c %a " .. q(dir .. "/b"))))
      assert.are.equal("644", trim(support.sh("stat -c %a " .. q(dir .. "/c"))))
    end)

    it("honours the umask, as open(2) does", function()
      local out = support.sh("umask 077 && " .. q(support.cdp()) .. " -e " .. q(([[
        local fs = require "cdp.fs"
        assert(fs.write(%q, "x"))
        assert(fs.write(%q, "x", { mode = "0640" }))
        assert(fs.append(%q, "x"))]]):format(dir .. "/u1", dir .. "/u2", dir .. "/u3")))
      assert.are.equal("", out)
      assert.are.equal("600", trim(support.sh("stat -c %a " .. q(dir .. "/u1"))))
      assert.are.equal("600", trim(support.sh("stat -c %a " .. q(dir .. "/u2"))))
      assert.are.equal("600", trim(support.sh("stat -c %a " .. q(dir .. "/u3"))))
    end)

    it("fails without leaving anything when the directory is missing or a file", function()
      fails("ENOENT", dir .. "/no/f", fs.write(dir .. "/no/f", "x"))
      support.write(dir .. "/file", "x")
      fails("ENOTDIR", dir .. "/file/f", fs.write(dir .. "/file/f", "x"))
      -- renaming a file over a directory fails after the temp file was written
      fs.mkdir(dir .. "/sub")
      fails("EISDIR", dir .. "/sub", fs.write(dir .. "/sub", "x"))
      assert.are.same({ "file", "sub" }, fs.list(dir))
      assert.are.same({}, fs.list(dir .. "/sub"))
    end)

    it("rejects bad options", function()
      assert.has_error(function() fs.write(dir .. "/x", "d", { mode = "9z" }) end)
      assert.has_error(function() fs.write(dir .. "/x", "d", { mode = 070000 }) end)
      assert.has_error(function() fs.write(dir .. "/x", "d", "0644") end)
      assert.has_error(function() fs.write(dir .. "/x", nil) end)
      assert.is_false(fs.exists(dir .. "/x"))
    end)
  end)

  describe("beneath a root", function()
    local cases = dofile("tests/fixtures/fs_beneath.lua")

    it("reads and writes inside it, never through a link (openat2 where the kernel has it)", function()
      local method = cases(dir)
      assert.are.equal("openat2", method) -- this kernel has it; the other walk is tested below
    end)

    it("does the same with the O_NOFOLLOW walk, for kernels without openat2", function()
      local out, code = support.sh("CDP_FS_NO_OPENAT2=1 " .. q(support.cdp()) .. " tests/fixtures/fs_beneath.lua "
        .. q(dir), { may_fail = true })
      assert.are.equal(0, code, out)
      assert.are.equal("nofollow", trim(out))
    end)

    it("rejects a root that is not a string", function()
      assert.has_error(function() fs.read("x", { beneath = 7 }) end)
    end)
  end)

  describe("append", function()
    it("creates the file and adds to its end", function()
      local p = dir .. "/journal.ndjson"
      assert.is_true(fs.append(p, "one\n"))
      assert.is_true(fs.append(p, "two\n"))
      assert.are.equal("one\ntwo\n", support.read(p))
    end)

    it("fails with the path named", function()
      fails("ENOENT", dir .. "/no/j", fs.append(dir .. "/no/j", "x"))
      fails("EISDIR", dir, fs.append(dir, "x"))
    end)
  end)

  describe("mkdir", function()
    it("makes one directory, and refuses an existing one without parents", function()
      assert.is_true(fs.mkdir(dir .. "/a"))
      assert.are.equal("directory", fs.stat(dir .. "/a").type)
      fails("EEXIST", dir .. "/a", fs.mkdir(dir .. "/a"))
      fails("ENOENT", dir .. "/x/y", fs.mkdir(dir .. "/x/y"))
    end)

    it("is mkdir -p with parents=true", function()
      assert.is_true(fs.mkdir(dir .. "/p/q//r/", { parents = true }))
      assert.are.equal("directory", fs.stat(dir .. "/p/q/r").type)
      assert.is_true(fs.mkdir(dir .. "/p/q/r", { parents = true }))
      assert.is_true(fs.mkdir(dir, { parents = true }))
    end)

    it("applies mode and names the component that is not a directory", function()
      assert.is_true(fs.mkdir(dir .. "/m", { mode = "700" }))
      assert.are.equal(tonumber("700", 8), fs.stat(dir .. "/m").mode)
      support.write(dir .. "/f", "x")
      local ok, msg, code = fs.mkdir(dir .. "/f/g/h", { parents = true })
      fails("ENOTDIR", dir .. "/f", ok, msg, code)
      assert.is_nil(msg:find("/g", 1, true))
      fails("ENOTDIR", dir .. "/f", fs.mkdir(dir .. "/f", { parents = true }))
    end)
  end)

  describe("list", function()
    it("returns sorted names without . and ..", function()
      for _, n in ipairs { "b", "a", "C", "a.b", ".hidden" } do
        support.write(dir .. "/" .. n, "")
      end
      fs.mkdir(dir .. "/d")
      assert.are.same({ ".hidden", "C", "a", "a.b", "b", "d" }, fs.list(dir))
      assert.are.same({}, fs.list(dir .. "/d"))
    end)

    it("fails on a missing path or a file", function()
      fails("ENOENT", dir .. "/none", fs.list(dir .. "/none"))
      support.write(dir .. "/f", "")
      fails("ENOTDIR", dir .. "/f", fs.list(dir .. "/f"))
    end)
  end)

  describe("stat, lstat and exists", function()
    it("describe files, directories and links", function()
      support.write(dir .. "/f", "12345")
      support.sh("chmod 640 " .. q(dir .. "/f"))
      assert.is_true(fs.symlink("f", dir .. "/l"))
      local st = fs.stat(dir .. "/f")
      assert.are.equal("file", st.type)
      assert.are.equal(5, st.size)
      assert.are.equal(tonumber("640", 8), st.mode)
      assert.are.equal(1, st.nlink)
      assert.are.equal(tonumber(trim(support.sh("stat -c %i " .. q(dir .. "/f")))), st.ino)
      assert.is_true(math.abs(st.mtime - tonumber(trim(support.sh("stat -c %Y " .. q(dir .. "/f"))))) < 1.01)
      assert.are.equal("file", fs.stat(dir .. "/l").type)
      assert.are.equal("link", fs.lstat(dir .. "/l").type)
      assert.are.equal("directory", fs.stat(dir).type)
      assert.are.equal("other", fs.stat("/dev/null").type)
    end)

    it("fail with ENOENT, and exists says false", function()
      fails("ENOENT", dir .. "/x", fs.stat(dir .. "/x"))
      fails("ENOENT", dir .. "/x", fs.lstat(dir .. "/x"))
      assert.is_false(fs.exists(dir .. "/x"))
      assert.is_true(fs.exists(dir))
      fs.symlink("missing", dir .. "/dangling")
      assert.is_false(fs.exists(dir .. "/dangling"))
      assert.are.equal("link", fs.lstat(dir .. "/dangling").type)
    end)
  end)

  describe("remove", function()
    it("removes a file, an empty directory and a link (not its target)", function()
      support.write(dir .. "/f", "x")
      fs.mkdir(dir .. "/d")
      fs.symlink(dir .. "/d", dir .. "/l")
      assert.is_true(fs.remove(dir .. "/l"))
      assert.is_true(fs.exists(dir .. "/d"))
      assert.is_true(fs.remove(dir .. "/f"))
      assert.is_true(fs.remove(dir .. "/d"))
      assert.are.same({}, fs.list(dir))
    end)

    it("fails on a missing path or a non-empty directory without recursive", function()
      fails("ENOENT", dir .. "/x", fs.remove(dir .. "/x"))
      support.write(dir .. "/d/f", "x")
      fails("ENOTEMPTY", dir .. "/d", fs.remove(dir .. "/d"))
    end)

    it("removes trees without following symlinks out of them", function()
      local outside = support.tmpdir()
      support.write(outside .. "/keep", "precious")
      support.write(dir .. "/t/a/b/c/f", "x")
      support.write(dir .. "/t/a/g", "y")
      fs.symlink(outside, dir .. "/t/a/b/out")
      fs.symlink(outside .. "/keep", dir .. "/t/keeplink")
      assert.is_true(fs.remove(dir .. "/t", { recursive = true }))
      assert.is_false(fs.exists(dir .. "/t"))
      assert.are.equal("precious", support.read(outside .. "/keep"))
      -- a link given as the root is removed as a link
      fs.symlink(outside, dir .. "/root-link")
      assert.is_true(fs.remove(dir .. "/root-link", { recursive = true }))
      assert.are.equal("precious", support.read(outside .. "/keep"))
    end)

    it("accepts a missing path with recursive=true", function()
      assert.is_true(fs.remove(dir .. "/never", { recursive = true }))
      assert.is_nil((fs.remove(dir .. "/never/deeper", { recursive = false })))
    end)

    it("fails with ENOTDIR, path named, when a parent is a file", function()
      support.write(dir .. "/f", "")
      fails("ENOTDIR", dir .. "/f/g", fs.remove(dir .. "/f/g", { recursive = true }))
    end)
  end)

  describe("rename, copy and symlink", function()
    it("rename moves and names both paths on failure", function()
      support.write(dir .. "/a", "A")
      assert.is_true(fs.rename(dir .. "/a", dir .. "/b"))
      assert.are.equal("A", support.read(dir .. "/b"))
      local ok, msg, code = fs.rename(dir .. "/a", dir .. "/c")
      fails("ENOENT", dir .. "/a -> " .. dir .. "/c", ok, msg, code)
    end)

    it("copy keeps content and mode and replaces the target", function()
      local data = ("0123456789"):rep(30000)
      support.write(dir .. "/src", data)
      support.sh("chmod 751 " .. q(dir .. "/src"))
      support.write(dir .. "/dst", "old")
      assert.is_true(fs.copy(dir .. "/src", dir .. "/dst"))
      assert.are.equal(data, support.read(dir .. "/dst"))
      assert.are.equal("751", trim(support.sh("stat -c %a " .. q(dir .. "/dst"))))
      assert.are.same({ "dst", "src" }, fs.list(dir))
    end)

    it("copy fails on a missing source, a directory, a missing target dir", function()
      fails("ENOENT", dir .. "/none", fs.copy(dir .. "/none", dir .. "/x"))
      fails("EISDIR", dir, fs.copy(dir, dir .. "/x"))
      support.write(dir .. "/src", "s")
      fails("ENOENT", dir .. "/no/x", fs.copy(dir .. "/src", dir .. "/no/x"))
      assert.are.same({ "src" }, fs.list(dir))
    end)

    it("symlink refuses an existing path", function()
      assert.is_true(fs.symlink("target", dir .. "/l"))
      assert.are.equal("target", trim(support.sh("readlink " .. q(dir .. "/l"))))
      fails("EEXIST", dir .. "/l", fs.symlink("other", dir .. "/l"))
    end)
  end)

  describe("paths", function()
    it("realpath resolves links and fails on missing paths", function()
      support.write(dir .. "/real/f", "")
      fs.symlink(dir .. "/real", dir .. "/l")
      local want = trim(support.sh("realpath " .. q(dir .. "/real/f")))
      assert.are.equal(want, fs.realpath(dir .. "/l/./f"))
      fails("ENOENT", dir .. "/none", fs.realpath(dir .. "/none"))
    end)

    it("cwd is the process's directory", function()
      assert.are.equal(trim(support.sh("pwd -P")), fs.cwd())
    end)

    it("dirname and basename follow POSIX", function()
      local cases = {
        { "a/b/c", "a/b", "c" }, { "a/b/", "a", "b" }, { "a", ".", "a" },
        { "/a", "/", "a" }, { "/", "/", "/" }, { "//", "/", "/" },
        { "", ".", "" }, { "a//b", "a", "b" }, { "/x/y.lua", "/x", "y.lua" },
      }
      for _, c in ipairs(cases) do
        assert.are.equal(c[2], fs.dirname(c[1]), "dirname " .. c[1])
        assert.are.equal(c[3], fs.basename(c[1]), "basename " .. c[1])
      end
    end)

    it("join puts one slash between parts and restarts at an absolute part", function()
      assert.are.equal("a/b/c", fs.join("a", "b", "c"))
      assert.are.equal("a/b", fs.join("a/", "b"))
      assert.are.equal("/x/y", fs.join("a", "/x", "y"))
      assert.are.equal("a/b", fs.join("a", "", "b"))
      assert.are.equal("a", fs.join("a"))
      assert.has_error(function() fs.join() end)
      assert.has_error(function() fs.join("a", 1, {}) end)
    end)

    it("tmpdir makes a private directory under $TMPDIR", function()
      local t = fs.tmpdir("cdp-spec-")
      assert.is_truthy(t:find("/cdp-spec-", 1, true))
      assert.are.equal("directory", fs.stat(t).type)
      assert.are.equal(tonumber("700", 8), fs.stat(t).mode)
      assert.is_true(fs.remove(t))
      assert.has_error(function() fs.tmpdir("a/b") end)
    end)
  end)

  describe("hashes", function()
    it("sha256 and sha256_file agree with sha256sum", function()
      local data = ("The quick brown fox\0"):rep(10000)
      support.write(dir .. "/f", data)
      local want = support.sh("sha256sum " .. q(dir .. "/f")):match("^%x+")
      assert.are.equal(want, fs.sha256(data))
      assert.are.equal(want, fs.sha256_file(dir .. "/f"))
      assert.are.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", fs.sha256(""))
      fails("ENOENT", dir .. "/none", fs.sha256_file(dir .. "/none"))
      fails("EISDIR", dir, fs.sha256_file(dir))
    end)

    it("hmac_sha256 matches RFC 4231 and openssl", function()
      -- RFC 4231 test case 2
      assert.are.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        fs.hmac_sha256("Jefe", "what do ya want for nothing?"))
      local _, status = support.sh("command -v openssl", { may_fail = true })
      if status == 0 then
        support.write(dir .. "/body", '{"event":"run.started"}')
        local out = support.sh("openssl dgst -sha256 -hmac s3cret -r " .. q(dir .. "/body"))
        assert.are.equal(out:match("^%x+"), fs.hmac_sha256("s3cret", '{"event":"run.started"}'))
      end
    end)
  end)

  describe("lock", function()
    it("is exclusive, names its holder, and releases idempotently", function()
      local p = dir .. "/run.lock"
      local lock = assert(fs.lock(p, { holder = "pid 1 on ci, run 42" }))
      assert.are.equal("pid 1 on ci, run 42", support.read(p))
      assert.are.equal(p, lock:path())
      assert.is_truthy(tostring(lock):find("cdp.fs.Lock", 1, true))
      local ok, msg, code, holder = fs.lock(p)
      assert.is_nil(ok)
      assert.are.equal("ELOCKED", code)
      assert.are.equal("pid 1 on ci, run 42", holder)
      assert.are.equal("ELOCKED: held by pid 1 on ci, run 42: " .. p, msg)
      lock:unlock()
      lock:close()
      assert.has_error(function() lock:path() end)
      assert.is_truthy(tostring(lock):find("released", 1, true))
      local again = assert(fs.lock(p))
      assert.is_truthy(support.read(p):find("^pid %d+ on "))
      again:close()
    end)

    it("is released by __close and by garbage collection", function()
      local p = dir .. "/l"
      do
        local held <close> = assert(fs.lock(p))
        assert.are.equal("ELOCKED", select(3, fs.lock(p)))
      end
      local l = assert(fs.lock(p))
      l = nil -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      assert.is_truthy(fs.lock(p))
    end)

    it("waits for a number of seconds, then gives up", function()
      local p = dir .. "/l"
      local held = assert(fs.lock(p, { holder = "me" }))
      local t0 = os.time()
      local ok, _, code, holder = fs.lock(p, { wait = 0.3 })
      assert.is_nil(ok)
      assert.are.equal("ELOCKED", code)
      assert.are.equal("me", holder)
      assert.is_true(os.time() - t0 < 3)
      held:close()
      assert.is_truthy(fs.lock(p, { wait = 1 }))
      assert.has_error(function() fs.lock(p, { wait = "yes" }) end)
      assert.has_error(function() fs.lock(p, { holder = 5 }) end)
    end)

    it("fails with the path named when the lock file cannot be made", function()
      fails("ENOENT", dir .. "/no/l", fs.lock(dir .. "/no/l"))
    end)

    it("is held by another process until that process is killed", function()
      local p = dir .. "/shared.lock"
      local ready = dir .. "/ready"
      local code = ("local l = assert(cdp.fs.lock(%q, {holder = 'other process'}))\n"
        .. "cdp.fs.write(%q, 'yes')\n"
        .. "while true do os.execute('sleep 1') end"):format(p, ready)
      local pid = trim(support.sh(q(support.cdp()) .. " -e " .. q(code)
        .. " </dev/null >/dev/null 2>&1 & echo $!"))
      local deadline = os.time() + 20
      while not fs.exists(ready) and os.time() < deadline do
        os.execute("sleep 0.05")
      end
      assert.is_true(fs.exists(ready))
      local ok, msg, ecode, holder = fs.lock(p)
      assert.is_nil(ok)
      assert.are.equal("ELOCKED", ecode)
      assert.are.equal("other process", holder)
      assert.is_truthy(msg:find("other process", 1, true))
      support.sh("kill -KILL " .. pid)
      local lock = fs.lock(p, { wait = 10 })
      assert.is_truthy(lock)
      lock:close()
    end)
  end)
end)
