import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { definePatch } from "../../patches/define-patch.ts";
import { finding, PatchTargetError, renderProblem } from "../../patches/lib/errors.ts";
import { at, callAnchor, findAll, findOne, frame } from "../../patches/lib/find.ts";
import { createTwoFilesPatch } from "diff";
import { applyPatchToText, lineDelta, runPatches } from "../../scripts/pipeline/patch.ts";
import { makeToyUpstream, TOY_DB, toyPatch } from "../support/toy.ts";

describe("patch engine", () => {
  it("counts +/- lines as the review hunk shows them, a moved line included", () => {
    const before = "a\nb\nc\n";
    const after = "b\na\nc\nd\n";
    const hunk = createTwoFilesPatch("a/f", "b/f", before, after).split("\n").slice(4);
    const shown = { additions: hunk.filter((l) => l.startsWith("+")).length, deletions: hunk.filter((l) => l.startsWith("-")).length };
    expect(shown).toEqual({ additions: 2, deletions: 1 });
    expect(lineDelta(before, after)).toEqual(shown);
  });

  it("applies a patch, marks the edit, and re-applying is a no-op", () => {
    const first = applyPatchToText(toyPatch, "server/db.js", TOY_DB);
    expect(first.action).toBe("applied");
    expect(first.text).toContain('db.pragma("busy_timeout = 1"); /* [patch:toy-busy-timeout] */');
    expect(first.text.indexOf("busy_timeout")).toBeLessThan(first.text.indexOf("journal_mode"));
    const again = applyPatchToText(toyPatch, "server/db.js", first.text);
    expect(again).toMatchObject({ action: "already-applied", text: first.text, map: null });
  });

  it("keeps upstream formatting: quote style and comments survive", () => {
    const input = "// keep me\nconst db = open();\ndb.pragma('journal_mode = WAL'); // wal\n";
    const out = applyPatchToText(toyPatch, "server/db.js", input).text;
    expect(out).toContain("// keep me");
    expect(out).toContain("db.pragma('journal_mode = WAL'); // wal");
  });

  it("fails loudly with patch id, file, expected shape and the nearest candidate's line", () => {
    const drifted = 'const db = open();\n\ndb.pragma("journal_mode = DELETE");\n';
    let err: unknown;
    try {
      applyPatchToText(toyPatch, "server/db.js", drifted);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PatchTargetError);
    const msg = (err as Error).message;
    expect(msg).toContain("[toy-busy-timeout] server/db.js: expected 1 call db.pragma(\"journal_mode = WAL\", …) but found 0");
    expect(msg).toContain('Nearest candidate: line 3: db.pragma("journal_mode = DELETE")');
  });

  it("names every match when an anchor is ambiguous", () => {
    const twice = 'db.pragma("journal_mode = WAL");\nif (x) {\n  db.pragma("journal_mode = WAL");\n}\n';
    expect(() => applyPatchToText(toyPatch, "server/db.js", twice)).toThrow(/found 2\. Matches at lines 1, 3/);
  });

  it("writes nothing when any patch fails, and writes a source map next to each patched file", () => {
    const dir = makeToyUpstream({ "server/other.js": "x();\n" });
    const failing = { ...toyPatch, id: "toy-fails", targets: ["server/other.js"] };
    const bad = runPatches(dir, [toyPatch, failing]);
    expect(bad.ok).toBe(false);
    expect(readFileSync(path.join(dir, "server/db.js"), "utf8")).toBe(TOY_DB);
    expect(bad.results.map((r) => [r.patch, r.action])).toEqual([
      ["toy-busy-timeout", "applied"],
      ["toy-busy-timeout", "applied"],
      ["toy-fails", "failed"],
      ["toy-fails", "failed"],
    ]);

    const good = runPatches(dir, [toyPatch]);
    expect(good.ok).toBe(true);
    expect(good.patchedFiles).toEqual(["server/db.js"]);
    expect(good.addedFiles).toEqual(["server/lib/toy-added.js"]);
    const map = JSON.parse(readFileSync(path.join(dir, "server/db.js.map"), "utf8"));
    expect(map.sources).toEqual(["server/db.js"]);
    expect(map.mappings.length).toBeGreaterThan(0);
  });

  it("reports a target file missing from upstream", () => {
    const dir = makeToyUpstream();
    const moved = { ...toyPatch, adds: undefined, targets: ["server/gone.js"] };
    const out = runPatches(dir, [moved]);
    expect(out.ok).toBe(false);
    expect(renderProblem(out.results[0].problem!)).toBe("[toy-busy-timeout] server/gone.js: target file is missing from upstream. Moved or deleted upstream?");
  });

  it("names upstream's line for the lines a finding carries (verify, a locator's detail), through the earlier patches' maps", () => {
    const OTHER = "server/other.js";
    const toy = (id: string, apply: Parameters<typeof definePatch>[0]["apply"], verify: Parameters<typeof definePatch>[0]["verify"]) =>
      definePatch({ id, description: id, why: "test", removeWhen: "never", targets: [OTHER], apply, verify });
    const prepend = toy("toy-prepend", (f) => void f.edit.prepend("// one\n// two\n"), (f) => (f.text.startsWith("// one") ? [] : ["not prepended"]));
    const stillCalls = toy("toy-still-calls", (f) => void f.edit.append("// touched\n"), (f) => findAll(f, callAnchor("x")).map((c) => finding`${at(c)}: x() is still called`));
    const detail = toy("toy-detail", (f) => {
      throw new PatchTargetError("toy-detail", f.path, "y()", 0, finding`Found ${frame(findOne("toy-detail", f, callAnchor("x")))}.`);
    }, () => ["not applied"]);
    const message = (patches: (typeof prepend)[]) => runPatches(makeToyUpstream({ [OTHER]: "x();\n" }), patches).results.find((r) => r.action === "failed")?.problem?.message;
    expect(message([prepend, stillCalls])).toBe("applied, but verify still fails: line 3 (upstream line 1): x() is still called");
    expect(message([prepend, detail])).toBe("expected 1 y() but found 0. Found line 3 (upstream line 1): x().");
    // Where no earlier patch moved the line, the text is what the patch wrote.
    expect(message([stillCalls])).toBe("applied, but verify still fails: line 1: x() is still called");
    expect(message([detail])).toBe("expected 1 y() but found 0. Found line 1: x().");
  });

  it("refuses to add a file upstream already has", () => {
    const dir = makeToyUpstream({ "server/lib/toy-added.js": "upstream's own\n" });
    const out = runPatches(dir, [toyPatch]);
    expect(out.ok).toBe(false);
    expect(out.results.find((r) => r.action === "failed")?.problem?.message).toContain("declared as a new file, but upstream already has it");
  });
});

describe("optional targets", () => {
  it("edits an optional target when upstream has it and reports it absent otherwise", () => {
    const opt = { ...toyPatch, adds: undefined, targets: [], optionalTargets: ["server/db.js"] };
    const withFile = runPatches(makeToyUpstream(), [opt]);
    expect(withFile.results.map((r) => r.action)).toEqual(["applied"]);
    const dir = makeToyUpstream();
    const without = runPatches(dir, [{ ...opt, optionalTargets: ["server/lib/added-later.js"] }]);
    expect(without.ok).toBe(true);
    expect(without.results).toMatchObject([{ file: "server/lib/added-later.js", action: "absent" }]);
  });

  it("adds a patch's runtime files only when one of its optional targets is there to use them", () => {
    const opt = { ...toyPatch, targets: [], optionalTargets: ["server/db.js"], adds: { "server/patch-runtime/toy.js": "// [patch:toy] runtime\n" } };
    const withFile = runPatches(makeToyUpstream(), [opt]);
    expect(withFile.results.map((r) => `${r.file} ${r.action}`)).toEqual(["server/db.js applied", "server/patch-runtime/toy.js applied"]);
    const without = runPatches(makeToyUpstream(), [{ ...opt, optionalTargets: ["server/lib/added-later.js"] }]);
    expect(without.ok).toBe(true);
    expect(without.results.map((r) => `${r.file} ${r.action}`)).toEqual(["server/lib/added-later.js absent"]);
  });
});

describe("whole-tree hooks: discover, verifyTree, satisfied", () => {
  // A toy patch over every module that says `legacy()`: it finds them itself, and checks all of them.
  const modern = {
    ...toyPatch,
    id: "toy-modern",
    targets: ["server/db.js"],
    adds: undefined,
    apply(file: import("../../patches/define-patch.ts").PatchFile) {
      if (file.path === "server/db.js") {
        file.satisfied("db.js needs nothing");
        file.edit.append("\n// modern\n");
        return;
      }
      const at = file.text.indexOf("legacy()");
      file.edit.overwrite(at, at + "legacy()".length, "modern()");
    },
    verify: (file: { path: string; text: string }) => (file.path === "server/db.js" ? (file.text.includes("// modern") ? [] : ["not modern"]) : file.text.includes("legacy()") ? ["legacy() call"] : []),
    discover: (tree: import("../../patches/define-patch.ts").TreeView) => tree.jsFiles.filter((f) => f !== "server/db.js" && tree.text(f).includes("legacy()")),
    verifyTree: (tree: import("../../patches/define-patch.ts").TreeView) => tree.jsFiles.filter((f) => tree.text(f).includes("legacy()")).map((f) => `${f}:1 legacy() call`),
  };

  it("applies to files it discovers (marked discovered) and records satisfied parts as already-satisfied rows", () => {
    const dir = makeToyUpstream({ "server/lib/a.js": "legacy();\n", "scripts/b.js": "ok();\n" });
    const out = runPatches(dir, [modern]);
    expect(out.ok).toBe(true);
    expect(out.results.map((r) => [r.file, r.action, r.note ?? null, r.discovered ?? false])).toEqual([
      ["server/db.js", "already-satisfied", "db.js needs nothing", false],
      ["server/db.js", "applied", null, false],
      ["server/lib/a.js", "applied", null, true],
    ]);
    expect(readFileSync(path.join(dir, "server/lib/a.js"), "utf8")).toBe("modern();\n");
  });

  it("the gate runs verifyTree over every JS file, including files no patch touched", async () => {
    const { assertGeneratedTree } = await import("../../scripts/pipeline/gate.ts");
    const { listFiles } = await import("../../scripts/lib/hash.ts");
    const dir = makeToyUpstream({ "server/lib/untouched.js": "legacy();\n" });
    const files = listFiles(dir);
    const gate = assertGeneratedTree({ dir, patches: [{ ...modern, targets: [], discover: undefined }], upstreamFiles: files, patchedFiles: [], addedFiles: [], nodeBinary: process.execPath });
    expect(gate.problems).toEqual([{ patch: "toy-modern", file: "whole tree", message: "server/lib/untouched.js:1 legacy() call" }]);
  });
});
