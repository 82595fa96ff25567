// The gate's batched syntax check: one Node 22 process compiles every file as CommonJS, names each
// file that does not compile with the error and its line, and runs none of them.
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ensureNode22 } from "../../scripts/lib/node22.ts";
import { renderProblem } from "../../patches/lib/errors.ts";
import { syntaxCheck } from "../../scripts/pipeline/syntax.ts";

describe("syntaxCheck", () => {
  it("accepts CommonJS (shebang, top-level return), rejects what V8 rejects, executes nothing", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "am-syntax-"));
    const files = {
      "ok.js": '#!/usr/bin/env node\nconst fs = require("fs");\nif (!fs) return;\nrequire("fs").writeFileSync(__filename + ".ran", "x");\n',
      "bad.js": "const a = 1;\n\nconst a = 2;\n",
      "broken.js": "function f( {\n",
    };
    for (const [f, t] of Object.entries(files)) writeFileSync(path.join(dir, f), t);
    const problems = syntaxCheck(ensureNode22(), Object.keys(files).map((rel) => ({ rel, abs: path.join(dir, rel) })));
    expect(problems.map((p) => p.line)).toEqual([3, expect.any(Number)]);
    expect(problems.map(renderProblem)).toEqual([
      "syntax: bad.js: SyntaxError: Identifier 'a' has already been declared (line 3)",
      expect.stringMatching(/^syntax: broken\.js: SyntaxError: .+ \(line \d+\)$/),
    ]);
    expect(existsSync(path.join(dir, "ok.js.ran"))).toBe(false);
  });
});
