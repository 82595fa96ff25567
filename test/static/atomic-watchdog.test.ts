// Static check of atomic-watchdog on a tree the test builds itself (the fixture, and the real
// upstream when AGENT_MONITOR_UPSTREAM is set): in the generated routes/hooks.js, watchdogCheck reads
// transcripts in a pre-pass and decides/writes in one transaction with no transcript read, no
// synchronous file-system call and no direct broadcast, and its frames go out after COMMIT.
import { readFileSync } from "node:fs";
import path from "node:path";
import { Node, SyntaxKind, type CallExpression, type FunctionDeclaration, type SourceFile } from "ts-morph";
import { describe, expect, it } from "vitest";
import { parseJs } from "../../scripts/pipeline/patch.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";

const HOOKS = "server/routes/hooks.js";
const callee = (c: CallExpression) => c.getExpression().getText().replace(/\s+/g, "");

function hooksAst(outDir: string): SourceFile {
  return parseJs(HOOKS, readFileSync(path.join(outDir, HOOKS), "utf8"));
}

function fn(ast: SourceFile, name: string): FunctionDeclaration {
  const f = ast.getFunction(name);
  expect(f, `function ${name}`).toBeDefined();
  return f!;
}

/** watchdogCheck, its runWatchdogTransaction(…) call and the inline function it runs. */
function watchdogParts(ast: SourceFile) {
  const check = fn(ast, "watchdogCheck");
  const runs = check.getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => callee(c) === "runWatchdogTransaction");
  expect(runs).toHaveLength(1);
  const body = runs[0].getArguments()[0];
  if (!body || !(Node.isArrowFunction(body) || Node.isFunctionExpression(body))) throw new Error("runWatchdogTransaction(…) does not get an inline function");
  return { check, run: runs[0], body };
}

if (!realUpstream) console.info(`[atomic-watchdog static] ${SKIP_REAL}`);

describe.each(trees())("atomic-watchdog in the generated %s tree", (_label, buildTree) => {
  it("the patch applied to routes/hooks.js", async () => {
    const outcome = await buildTree();
    expect(outcome.results.filter((r) => r.patch === "atomic-watchdog").map((r) => [r.file, r.action])).toEqual([[HOOKS, "applied"]]);
  });

  it("the transaction body has no transcript read, no sync fs call, no require, no direct broadcast", async () => {
    const { body } = watchdogParts(hooksAst((await buildTree()).outDir));
    const calls = body.getDescendantsOfKind(SyntaxKind.CallExpression).map(callee);
    expect(calls.length).toBeGreaterThan(5);
    expect(calls.filter((c) => /^transcriptCache\./.test(c))).toEqual([]);
    expect(calls.filter((c) => /^fs\./.test(c) || /Sync$/.test(c))).toEqual([]);
    expect(calls.filter((c) => c === "require")).toEqual([]);
    expect(calls.filter((c) => c === "broadcast")).toEqual([]);
    // its frames go to the local collector instead
    expect(calls.filter((c) => c === "emit").length).toBeGreaterThan(0);
    expect(body.getParameters().map((p) => p.getName())).toEqual(["emit"]);
  });

  it("transcripts and file stats are read before the transaction, in watchdogCheck's pre-pass", async () => {
    const { check, run } = watchdogParts(hooksAst((await buildTree()).outDir));
    const extracts = check.getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => callee(c) === "transcriptCache.extract");
    expect(extracts.length).toBeGreaterThan(0);
    for (const e of extracts) expect(e.getEnd()).toBeLessThan(run.getStart());
    const push = check.getDescendantsOfKind(SyntaxKind.CallExpression).find((c) => callee(c) === "watchdogReads.push");
    expect(push, "the pre-pass hands its reads over").toBeDefined();
    expect(push!.getEnd()).toBeLessThan(run.getStart());
    const stat = fn(hooksAst((await buildTree()).outDir), "watchdogStatOf");
    expect(stat.getText()).toContain('require("fs").statSync(file)');
  });

  it("decisions use state read inside the transaction: the stale query re-runs, sessions and agents are re-read", async () => {
    const { check, body } = watchdogParts(hooksAst((await buildTree()).outDir));
    const staleNow = body.getDescendantsOfKind(SyntaxKind.VariableDeclaration).find((d) => d.getName() === "staleNow");
    expect(staleNow?.getInitializer()?.getText()).toBe("new Map(queryStaleSessions().map((s) => [s.id, s]))");
    const sess = body.getDescendantsOfKind(SyntaxKind.VariableDeclaration).find((d) => d.getName() === "sess");
    expect(sess?.getInitializer()?.getText()).toBe("staleNow.get(watchdogRead.id)");
    const guard = sess!.getVariableStatementOrThrow().getNextSiblingIfKind(SyntaxKind.IfStatement);
    expect(guard?.getExpression().getText()).toBe("!sess");
    expect(Node.isContinueStatement(guard!.getThenStatement())).toBe(true);
    // the same query function feeds the pre-pass
    const pre = check.getDescendantsOfKind(SyntaxKind.VariableDeclaration).find((d) => d.getName() === "staleSessions");
    expect(pre?.getInitializer()?.getText()).toBe("queryStaleSessions()");
    // the row reads that drive the decisions sit inside the transaction
    const reads = body.getDescendantsOfKind(SyntaxKind.CallExpression).map(callee);
    expect(reads).toContain("stmts.getSession.get");
    expect(body.getText()).toMatch(/FROM agents WHERE session_id = \? AND type = 'main'|stmts\.getAgent\.get/);
  });

  it("runWatchdogTransaction: one db.transaction, frames held and sent only after it returns, dropped on throw", async () => {
    const run = fn(hooksAst((await buildTree()).outDir), "runWatchdogTransaction");
    const tries = run.getDescendantsOfKind(SyntaxKind.TryStatement);
    expect(tries).toHaveLength(1);
    const tx = tries[0].getTryBlock().getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => callee(c) === "db.transaction");
    expect(tx).toHaveLength(1);
    const catchBlock = tries[0].getCatchClauseOrThrow().getBlock();
    expect(catchBlock.getText()).toContain("hold.discard()");
    expect(catchBlock.getStatements().at(-1)?.getText()).toBe("throw err;");
    const sends = run.getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => ["broadcast", "hold.flush"].includes(callee(c)));
    expect(sends.map(callee)).toEqual(["hold.flush", "broadcast"]);
    for (const s of sends) expect(s.getStart()).toBeGreaterThan(tries[0].getEnd());
  });

  it("livenessReap still runs from watchdogCheck, outside the transaction (unchanged)", async () => {
    const { check, body } = watchdogParts(hooksAst((await buildTree()).outDir));
    const reaps = check.getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => callee(c) === "livenessReap");
    expect(reaps.length).toBeGreaterThan(0);
    for (const r of reaps) expect(r.getStart()).toBeGreaterThan(body.getEnd());
  });
});
