// Static check of turn-durations-once on a tree the test builds itself (the fixture, and the real
// upstream when AGENT_MONITOR_UPSTREAM is set): the generated routes/hooks.js records each
// transcript turn_duration once and derives the metadata counters instead of adding them up.
import { readFileSync } from "node:fs";
import path from "node:path";
import { Node, SyntaxKind, type ForOfStatement, type SourceFile } from "ts-morph";
import { describe, expect, it } from "vitest";
import { parseJs } from "../../scripts/pipeline/patch.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";

const HOOKS = "server/routes/hooks.js";

function hooksAst(outDir: string): SourceFile {
  return parseJs(HOOKS, readFileSync(path.join(outDir, HOOKS), "utf8"));
}

function turnDurationLoop(ast: SourceFile): ForOfStatement {
  const loops = ast
    .getDescendantsOfKind(SyntaxKind.ForOfStatement)
    .filter((l) => /\.turnDurations$/.test(l.getExpression().getText()));
  expect(loops).toHaveLength(1);
  return loops[0];
}

if (!realUpstream) console.info(`[turn-durations-once static] ${SKIP_REAL}`);

describe.each(trees())("turn-durations-once in the generated %s tree", (_label, buildTree) => {
  it("the patch applied to routes/hooks.js", async () => {
    const outcome = await buildTree();
    const mine = outcome.results.filter((r) => r.patch === "turn-durations-once");
    expect(mine.map((r) => [r.file, r.action])).toEqual([[HOOKS, "applied"]]);
  });

  it("creates the (session_id, event_type, created_at) index once, at module level, fail-safe", async () => {
    const ast = hooksAst((await buildTree()).outDir);
    const tries = ast.getStatements().filter(Node.isTryStatement);
    const indexTry = tries.find((t) => /CREATE INDEX IF NOT EXISTS idx_events_session_type_created ON events\(session_id, event_type, created_at\)/.test(t.getTryBlock().getText()));
    expect(indexTry, "module-level try { db.exec(CREATE INDEX …) }").toBeDefined();
    expect(indexTry!.getCatchClause()).toBeDefined();
  });

  it("the TurnDuration loop skips what is recorded and inserts at the transcript timestamp", async () => {
    const ast = hooksAst((await buildTree()).outDir);
    const loop = turnDurationLoop(ast);

    // one lookup per hook, right before the loop
    const before = loop.getPreviousSiblingIfKind(SyntaxKind.VariableStatement);
    expect(before?.getDeclarations()[0].getName()).toBe("newestRecordedTurnAt");
    expect(before?.getDeclarations()[0].getInitializer()?.getText()).toBe("newestTurnDurationAt(sessionId)");
    // no per-entry lookup outside the loop either: the loop is inside the per-hook transcript block
    const body = loop.getStatement();
    expect(Node.isBlock(body)).toBe(true);
    const stmts = (body as import("ts-morph").Block).getStatements();

    // first: the transcript timestamp, then the skip guard
    expect(stmts[0].getText()).toBe("const tdTs = turnDurationTimestamp(td);");
    const guard = stmts[1];
    expect(Node.isIfStatement(guard)).toBe(true);
    if (!Node.isIfStatement(guard)) return;
    expect(guard.getExpression().getText()).toBe("!tdTs || (newestRecordedTurnAt && tdTs <= newestRecordedTurnAt)");
    expect(Node.isContinueStatement(guard.getThenStatement())).toBe(true);

    // the only insert in the loop is at tdTs; no insert stamped "now"
    const calls = body.getDescendantsOfKind(SyntaxKind.CallExpression);
    const inserts = calls.filter((c) => /insert/i.test(c.getExpression().getText()));
    expect(inserts.map((c) => c.getExpression().getText())).toEqual(["insertTurnDurationAt"]);
    const args = inserts[0].getArguments().map((a) => a.getText());
    expect(args).toHaveLength(7);
    expect(args[2]).toBe('"TurnDuration"');
    expect(args[6]).toBe("tdTs");

    // the helpers exist at module level, and the insert names created_at explicitly
    const fns = new Map(ast.getFunctions().map((f) => [f.getName(), f]));
    for (const name of ["turnDurationTimestamp", "newestTurnDurationAt", "insertTurnDurationAt", "turnDurationStatements"]) {
      expect(fns.has(name), name).toBe(true);
    }
    const stmtsFn = fns.get("turnDurationStatements")!.getText();
    expect(stmtsFn).toContain("ORDER BY created_at DESC LIMIT 1");
    expect(stmtsFn).toContain("INSERT INTO events (session_id, agent_id, event_type, tool_name, summary, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)");
  });

  it("turn_count and total_turn_duration_ms are derived from the transcript, never accumulated", async () => {
    const ast = hooksAst((await buildTree()).outDir);
    for (const target of ["meta.turn_count", "meta.total_turn_duration_ms"]) {
      const assigns = ast
        .getDescendantsOfKind(SyntaxKind.BinaryExpression)
        .filter((b) => b.getLeft().getText() === target && /=$/.test(b.getOperatorToken().getText()));
      expect(assigns.length, target).toBeGreaterThan(0);
      for (const a of assigns) {
        expect(a.getOperatorToken().getKind(), `${target}: compound assignment`).toBe(SyntaxKind.EqualsToken);
        const mentionsItself = a.getRight().getDescendantsOfKind(SyntaxKind.PropertyAccessExpression).some((p) => p.getText() === target);
        expect(mentionsItself, `${target} = ${a.getRight().getText()}`).toBe(false);
      }
    }
    const count = ast.getDescendantsOfKind(SyntaxKind.BinaryExpression).find((b) => b.getLeft().getText() === "meta.turn_count")!;
    expect(count.getRight().getText()).toBe("result.turnDurations.length");
  });
});
