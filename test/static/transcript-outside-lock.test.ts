// Static check of transcript-outside-lock on trees this test builds itself (the fixture, and the
// real upstream when AGENT_MONITOR_UPSTREAM is set): in the generated routes/hooks.js no transcript
// read and no synchronous file I/O is reachable from processEventCore (the code that runs under
// the write lock), the reads happen in extractTranscriptForEvent, and processEvent(hookType, data)
// still exists for single-event callers. The same call-graph walk finds the reads in the pristine
// processEvent, so it is not vacuous.
import { readFileSync } from "node:fs";
import path from "node:path";
import { Node, type SourceFile, SyntaxKind } from "ts-morph";
import { describe, expect, it } from "vitest";
import { analyzeLockHeld, lockHazard, moduleFunctions } from "../../patches/transcript-outside-lock.ts";
import { parseJs } from "../../scripts/pipeline/patch.ts";
import { buildFixtureUnpatched, realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";

const HOOKS = "server/routes/hooks.js";

if (!realUpstream) console.info(`[transcript-outside-lock static] ${SKIP_REAL}`);

function hooksAst(outDir: string): SourceFile {
  return parseJs(HOOKS, readFileSync(path.join(outDir, HOOKS), "utf8"));
}

function topFunction(ast: SourceFile, name: string) {
  const fn = ast.getStatements().find((s) => Node.isFunctionDeclaration(s) && s.getName() === name);
  expect(fn, `top-level function ${name}`).toBeDefined();
  return fn as import("ts-morph").FunctionDeclaration;
}

const calleeTexts = (node: Node) => node.getDescendantsOfKind(SyntaxKind.CallExpression).map((c) => c.getExpression().getText().replace(/\s+/g, ""));

describe.each(trees())("transcript-outside-lock in the generated %s tree", (_label, buildTree) => {
  it("applied to routes/hooks.js", async () => {
    const outcome = await buildTree();
    expect(outcome.results.filter((r) => r.patch === "transcript-outside-lock").map((r) => [r.file, r.action])).toEqual([[HOOKS, "applied"]]);
  });

  it("processEventCore is a plain function of (hookType, data, transcriptData), not a transaction callback", async () => {
    const ast = hooksAst((await buildTree()).outDir);
    const core = topFunction(ast, "processEventCore");
    expect(core.getParameters().map((p) => p.getName())).toEqual(["hookType", "data", "transcriptData"]);
    // no db.transaction(...) call wraps an inline function any more
    const inlineTx = ast.getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => {
      const callee = c.getExpression();
      const arg = c.getArguments()[0];
      if (!Node.isPropertyAccessExpression(callee) || callee.getName() !== "transaction" || !arg) return false;
      if (!Node.isArrowFunction(arg) && !Node.isFunctionExpression(arg)) return false;
      return arg.getParameters().map((p) => p.getName()).join(",") === "hookType,data";
    });
    expect(inlineTx).toEqual([]);
  });

  it("nothing reachable from processEventCore reads a transcript or does synchronous file I/O", async () => {
    const ast = hooksAst((await buildTree()).outDir);
    const analysis = analyzeLockHeld(ast, "processEventCore");
    expect(analysis.found).toBe(true);
    // the walk really goes through the module's helpers (not just the core's own body)
    expect(analysis.reachable).toEqual(expect.arrayContaining(["processEventCore", "ensureSession", "getMainAgent", "clearAwaitingInput"]));
    expect(analysis.findings.map((f) => `${f.chain.join(" → ")}: ${f.what} (line ${f.line})`)).toEqual([]);
    // and, directly: the core's uses of the transcript go through the handed-in data
    const core = topFunction(ast, "processEventCore");
    expect(calleeTexts(core).filter((c) => /transcriptCache\.extract/.test(c))).toEqual([]);
    expect(calleeTexts(core).filter((c) => c === "transcriptData.resultFor").length).toBeGreaterThanOrEqual(1);
  });

  it("extractTranscriptForEvent does the transcript reads, before any transaction", async () => {
    const ast = hooksAst((await buildTree()).outDir);
    const helper = topFunction(ast, "extractTranscriptForEvent");
    expect(calleeTexts(helper)).toContain("transcriptCache.extract");
    // it touches no database: only the cache
    expect(calleeTexts(helper).filter((c) => /^(stmts|db)\./.test(c))).toEqual([]);
  });

  it("processEvent(hookType, data) remains for single-event callers: read first, then db.transaction(processEventCore)", async () => {
    const ast = hooksAst((await buildTree()).outDir);
    const fns = moduleFunctions(ast);
    const wrapper = fns.get("processEvent");
    expect(wrapper && Node.isArrowFunction(wrapper)).toBe(true);
    if (!wrapper || !Node.isArrowFunction(wrapper)) return;
    expect(wrapper.getParameters().map((p) => p.getName())).toEqual(["hookType", "data"]);
    expect(wrapper.getBody().getText()).toBe("processEventTransaction(hookType, data, extractTranscriptForEvent(hookType, data))");
    const tx = fns.get("processEventTransaction");
    expect(tx?.getText()).toBe("db.transaction(processEventCore)");
  });
});

describe("the call-graph walk is not vacuous", () => {
  it("finds the transcript reads inside the pristine processEvent transaction", async () => {
    const ast = hooksAst((await buildFixtureUnpatched()).outDir);
    const analysis = analyzeLockHeld(ast, "processEvent");
    expect(analysis.found).toBe(true);
    const reads = analysis.findings.filter((f) => f.what.startsWith("transcript read transcriptCache.extract"));
    expect(reads.length).toBeGreaterThanOrEqual(1);
    expect(reads.every((f) => f.chain[0] === "processEvent")).toBe(true);
  });

  it("classifies calls: transcript reads, *Sync I/O and non-builtin require are hazards; in-memory cache calls are not", () => {
    const ast = parseJs("x.js", [
      "transcriptCache.extract(p);",
      "router.transcriptCache.extractCompactions(p);",
      "transcriptCache.invalidate(p);",
      "fs.readFileSync(p);",
      "statSync(p);",
      'require("path");',
      'require("node:fs");',
      'require("../lib/thing");',
      "stmts.insertEvent.run(a);",
    ].join("\n"));
    const verdicts = ast.getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => Node.isExpressionStatement(c.getParent()!)).map((c) => [c.getText(), lockHazard(c)]);
    expect(verdicts).toEqual([
      ["transcriptCache.extract(p)", "transcript read transcriptCache.extract(…)"],
      ["router.transcriptCache.extractCompactions(p)", "transcript read router.transcriptCache.extractCompactions(…)"],
      ["transcriptCache.invalidate(p)", null],
      ["fs.readFileSync(p)", "synchronous I/O fs.readFileSync(…)"],
      ["statSync(p)", "synchronous I/O statSync(…)"],
      ['require("path")', null],
      ['require("node:fs")', null],
      ['require("../lib/thing")', 'module load require("../lib/thing") (synchronous file I/O)'],
      ["stmts.insertEvent.run(a)", null],
    ]);
  });
});
