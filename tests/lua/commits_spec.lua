local commits = require "cdp.commits"

describe("cdp.commits.parse", function()
  it("reads type, scope and description", function()
    local c = commits.parse("feat(parser): accept trailing commas")
    assert.is_true(c.conventional)
    assert.are.equal("feat", c.type)
    assert.are.equal("parser", c.scope)
    assert.are.equal("accept trailing commas", c.description)
    assert.is_false(c.breaking)
    assert.are.equal("", c.body)
    assert.are.same({}, c.footers)
  end)

  it("takes types case-insensitively and scopes with odd characters", function()
    local c = commits.parse("Fix(core/io-v2): handle EINTR")
    assert.are.equal("fix", c.type)
    assert.are.equal("core/io-v2", c.scope)
    assert.is_nil(commits.parse("docs(): x").scope)
  end)

  it("marks '!' after the type or scope as breaking", function()
    local c = commits.parse("refactor!: drop the old API")
    assert.is_true(c.breaking)
    assert.are.equal("refactor", c.type)
    assert.are.equal("drop the old API", c.breaking_note)
    c = commits.parse("feat(api)!: rename Client::get")
    assert.is_true(c.breaking)
    assert.are.equal("api", c.scope)
  end)

  it("reads body and footers, including multi-line footer values", function()
    local c = commits.parse(table.concat({
      "fix: prevent racing of requests",
      "",
      "Introduce a request id and a reference to latest request.",
      "",
      "Remove timeouts which were used to mitigate the racing issue but are",
      "obsolete now.",
      "",
      "Reviewed-by: Z",
      "Refs #123",
      "Co-authored-by: A <a@example.com>",
      "  continued here",
    }, "\n"))
    assert.are.equal("Introduce a request id and a reference to latest request.\n\n" ..
      "Remove timeouts which were used to mitigate the racing issue but are\nobsolete now.", c.body)
    assert.are.same({
      { token = "Reviewed-by", value = "Z" },
      { token = "Refs", value = "#123" },
      { token = "Co-authored-by", value = "A <a@example.com>\n  continued here" },
    }, c.footers)
    assert.is_false(c.breaking)
  end)

  it("finds BREAKING CHANGE and BREAKING-CHANGE footers", function()
    local c = commits.parse("feat: allow config objects\n\nBREAKING CHANGE: `extends` now merges")
    assert.is_true(c.breaking)
    assert.are.equal("`extends` now merges", c.breaking_note)
    c = commits.parse("chore: bump msrv\n\nSome words.\n\nBREAKING-CHANGE: needs rustc 1.80\nRefs: #9")
    assert.is_true(c.breaking)
    assert.are.equal("needs rustc 1.80", c.breaking_note)
    assert.are.equal("Some words.", c.body)
  end)

  it("does not take a lower-case 'breaking change' or a mid-body mention as breaking", function()
    assert.is_false(commits.parse("fix: x\n\nbreaking change: no").breaking)
    assert.is_false(commits.parse("fix: x\n\nBREAKING CHANGE: not a footer\n\nbecause this paragraph follows").breaking)
  end)

  it("keeps non-conventional messages as type 'other'", function()
    for _, msg in ipairs { "Update README", "WIP", "feat:no space", "feat : spaced", "(scope): no type",
      "Merge branch 'topic'", "feat: ", "" } do
      local c = commits.parse(msg)
      assert.are.equal("other", c.type, msg)
      assert.is_false(c.conventional, msg)
      assert.are.equal((msg:gsub("%s+$", "")), c.description)
    end
  end)

  it("recognises git's Revert \"...\" and conventional revert: commits", function()
    local c = commits.parse('Revert "feat: add x"\n\nThis reverts commit 0123456789abcdef0123456789abcdef01234567.')
    assert.are.equal("revert", c.type)
    assert.are.same({ header = "feat: add x", id = "0123456789abcdef0123456789abcdef01234567" }, c.revert)
    c = commits.parse("revert: feat: add x\n\nRefs: 0123abc")
    assert.are.equal("revert", c.type)
    assert.are.same({ header = "feat: add x", id = "0123abc" }, c.revert)
    c = commits.parse('Revert "Revert "fix: y""')
    assert.are.same({ header = 'Revert "fix: y"' }, c.revert)
  end)

  it("raises on misuse", function()
    assert.has_error(function() commits.parse(nil) end, "commits.parse: expected a string, got nil")
  end)
end)

describe("cdp.commits.effective", function()
  local function list(spec)
    local out = {}
    for i, s in ipairs(spec) do
      out[i] = { id = s[1], parsed = commits.parse(s[2]) }
    end
    return out
  end
  local function ids(l)
    local out = {}
    for i, c in ipairs(l) do out[i] = c.id end
    return out
  end

  it("cancels a revert and the commit it reverts when both are in the set", function()
    local kept, cancelled = commits.effective(list {
      { "cccc000", 'Revert "feat: a"\n\nThis reverts commit aaaa000.' },
      { "bbbb000", "fix: b" },
      { "aaaa000", "feat: a" },
    })
    assert.are.same({ "bbbb000" }, ids(kept))
    assert.are.same({ "cccc000", "aaaa000" }, ids(cancelled))
    assert.are.equal("aaaa000", cancelled[1].cancelled_by)
    assert.are.equal("cccc000", cancelled[2].cancelled_by)
  end)

  it("keeps a revert whose target was already released", function()
    local kept = commits.effective(list { { "cccc000", 'Revert "feat: old"\n\nThis reverts commit 9999999.' } })
    assert.are.same({ "cccc000" }, ids(kept))
  end)

  it("matches by header when a revert names no commit", function()
    local kept = commits.effective(list {
      { "c3", "revert: feat: a" }, { "c2", "feat: a" }, { "c1", "feat: a" },
    })
    assert.are.same({ "c1" }, ids(kept))
  end)

  it("brings a commit back when its revert is reverted", function()
    local kept = commits.effective(list {
      { "2222222", 'Revert "Revert "feat: a""\n\nThis reverts commit 1111111.' },
      { "1111111", 'Revert "feat: a"\n\nThis reverts commit aaaaaaa.' },
      { "aaaaaaa", "feat: a" },
    })
    assert.are.same({ "aaaaaaa" }, ids(kept))
  end)
end)

-- commits.parse is C; commits.reference_parse is its definition in Lua. They
-- must give the same table for every message, however odd.
describe("cdp.commits.parse against its Lua definition", function()
  local function same(message)
    local want = commits.reference_parse(message)
    local got = commits.parse(message)
    assert.are.same(want, got, ("message %q"):format(message))
  end

  it("on odd messages one by one", function()
    for _, m in ipairs {
      "", " ", "\n", "\n\n\n", "   \n  \n", "\r\n", "\r", "feat: x", "feat: x\n", "feat: x\r\n",
      "  feat: x  ", "\n\n  feat(core): after blank lines  ", " \t\n feat: y", "\t\nfeat: z",
      "feat:x", "feat :x", "feat: ", "feat:", "feat:\t\tx", "feat: \v", "feat:\vx", "feat!: x", "feat!:x",
      "feat(!): x", "feat(a)!: x", "feat(a)! : x", "feat()!: x", "feat(  ): x", "feat( a b ): x",
      "feat(a(b)c): x", "feat(a(b): x", "feat((a)): x", "feat(a))(: x", "fix(fresh)(x): odd scope",
      "feat(a)(b): x", "Feat(Core): capitals", "FEAT: SHOUT", "f-e_a-t: x", "1feat: x", "_feat: x",
      "-feat: x", "feat-: x", "feät: x", "é: x", "feat(é): ü", "feat: x\0y", "fe\0at: x",
      "(scope): no type", "Merge branch 'topic'", "Update README", "WIP",
      'Revert "feat: add x"', 'Revert "feat: add x"\n\nThis reverts commit 0123456789abcdef0123456789abcdef01234567.',
      'Revert "Revert "fix: y""', 'Revert ""', 'Revert "', 'Revert "x" ', ' Revert "x"', 'revert "x"',
      'Revert "x"\n\nthis reverts commit ABCDEF0', 'Revert "x"\n\nThis reverts commit abc', 
      'Revert "x"\n\nThis reverts commit abc and This reverts commit 1234567abc.',
      "revert: feat: add x\n\nRefs: 0123abc", "revert: x\n\nRefs: 0123ab", "revert: x\n\nReverts: ABCDEF01 and more",
      "revert: x\n\nrefs: abcdef0", "revert: x\n\nREFS #abcdef0", "revert: x\n\nRefs: zzz\nReverts: 1234567",
      "Revert: x", "REVERT(core)!: x", "revert: x\n\nThis reverts commit 1234567.\n\nRefs: abcdef9",
      "fix: x\n\nbreaking change: no", "fix: x\n\nBREAKING CHANGE: not a footer\n\nbecause this paragraph follows",
      "fix: x\n\nBREAKING CHANGE:", "fix: x\n\nBREAKING CHANGE:   spaced", "fix: x\n\nBREAKING CHANGE:no space",
      "fix: x\n\nBREAKING-CHANGE:no space", "fix: x\n\nBREAKING-CHANGE: dashed", "fix: x\n\nBREAKING  CHANGE: two",
      "fix!: x\n\nBREAKING CHANGE: note wins", "fix: x\n\nBREAKING CHANGE: one\nBREAKING CHANGE: two",
      "fix: x\n\nBREAKING CHANGE: a\n  continued\n\nRefs: #1", "fix: x\n\nReviewed-by: Z\nRefs #123",
      "fix: x\n\nReviewed-by:Z", "fix: x\n\nReviewed-by:\tZ", "fix: x\n\nRefs#1", "fix: x\n\nRefs\t#1",
      "fix: x\n\nRefs  #", "fix: x\n\n-token: v", "fix: x\n\ntoken-: v", "fix: x\n\nto ken: v",
      "fix: x\n\nbody\nReviewed-by: Z", "fix: x\n\nReviewed-by: Z\nbody after", "fix: x\n\nbody\n\nReviewed-by: Z\n",
      "fix: x\n\npara one\nline two\n\npara two\n\n\n\npara three\n\nA: b\n\nC: d\ne\n\nF #g",
      "fix: x\n\n\n\n", "fix: x\n  \n\t\nbody", "fix: x\nno blank line\nbody", "fix: x\r\n\r\nbody\r\n\r\nA: b\r\n",
      "fix: x\r\r\n\r\nbody\r\r\n", "fix: x\n\nA: b   \n  \n", "fix: x\n\nA: b\n\n\n",
      "feat(cli): a new flag\r\n\r\nWith a CRLF body.\r\n\r\nCo-authored-by: Ken Thompson <ken@cdp.invalid>\r\n  who helped",
      "fix(cli): quote \"paths\" and \\backslashes\\ \1 in messages",
      "fix(util): café ünïcode — and a tab\there",
      "feat: a\n\nSigned-off-by: A <a@b>\nSigned-off-by: B <b@c>\nCo-authored-by: C",
      "chore: x\n\nSome words.\n\nBREAKING-CHANGE: needs rustc 1.80\nRefs: #9",
      ("feat: long " .. ("x"):rep(5000)) .. "\n\n" .. ("body line\n"):rep(300),
    } do
      same(m)
    end
  end)

  it("on many messages put together from odd parts", function()
    local leads = { "", "\n", " \n\t\n", "  " }
    local headers = { "feat: add x", "fix(core): y", "refactor!: z", "docs(a b)!: w", "Revert \"feat: q\"",
      "revert: fix: r", "plain prose here", "feat:nospace", "component: message", "x(y)(z): w", "" }
    local gaps = { "\n", "\n\n", "\r\n\r\n", "\n \n", "" }
    local bodies = { "", "one line", "two\nlines", "para\n\npara", "ends with cr\r", "Refs: not last\n\nbody" }
    local footers = { "", "Refs: #1", "BREAKING CHANGE: gone", "BREAKING-CHANGE: also\n  more",
      "This reverts commit abcdef0123.", "Reverts: 1234567", "Co-authored-by: A\nRefs #2", "token #value\nnext: v" }
    local ends = { "", "\n", "\r\n", "\n\n", "  " }
    local n = 0
    for _, lead in ipairs(leads) do
      for _, header in ipairs(headers) do
        for gi, gap in ipairs(gaps) do
          for bi, body in ipairs(bodies) do
            for fi, footer in ipairs(footers) do
              local e = ends[(gi + bi + fi) % #ends + 1]
              local sep = (fi + bi) % 2 == 0 and "\n\n" or "\n"
              same(lead .. header .. gap .. body .. sep .. footer .. e)
              n = n + 1
            end
          end
        end
      end
    end
    assert.is_true(n > 10000)
  end)

  it("on random bytes", function()
    local seed = 7
    local alphabet = { "f", "e", "a", "t", "(", ")", "!", ":", " ", "\t", "\n", "\r", "#", "-", "B", "R",
      "E", "A", "K", "I", "N", "G", " CHANGE", "Revert \"", "\"", "This reverts commit ", "0", "a", "9", "\0" }
    for _ = 1, 3000 do
      local parts = {}
      seed = (seed * 1103515245 + 12345) % 2147483648
      for i = 1, seed % 40 do
        seed = (seed * 1103515245 + 12345) % 2147483648
        parts[i] = alphabet[seed % #alphabet + 1]
      end
      same(table.concat(parts))
    end
  end)

  it("fills in body and footers of a walk's lazily parsed messages", function()
    local msg = "fix: x\n\nthe body\n\nRefs: #1\nBREAKING CHANGE: y"
    local want = commits.reference_parse(msg)
    local got = require("cdp.commits.native").parse(msg)
    assert.are.same(want, got)
  end)
end)
