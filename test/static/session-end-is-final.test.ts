// Static check of session-end-is-final on a tree the test builds itself (the fixture, and the real
// upstream when AGENT_MONITOR_UPSTREAM is set): the generated hook client stamps its send time, and
// the generated hook route gates reactivation and state changes on it and orders write-queue batches
// by it. The ordering function itself is taken from the generated file and run.
import { readFileSync } from "node:fs";
import path from "node:path";
import vm from "node:vm";
import { Node, SyntaxKind, type SourceFile } from "ts-morph";
import { describe, expect, it } from "vitest";
import { parseJs } from "../../scripts/pipeline/patch.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";

const HOOKS = "server/routes/hooks.js";
const HANDLER = "scripts/hook-handler.js";

function ast(outDir: string, file: string): SourceFile {
  return parseJs(file, readFileSync(path.join(outDir, file), "utf8"));
}

/** The event function (processEventCore after transcript-outside-lock). */
function core(sf: SourceFile) {
  const needs = sf.getDescendantsOfKind(SyntaxKind.VariableDeclaration).filter((d) => d.getName() === "needsReactivation");
  expect(needs).toHaveLength(1);
  const fn = needs[0].getFirstAncestor((a) => Node.isFunctionDeclaration(a) || Node.isArrowFunction(a) || Node.isFunctionExpression(a));
  expect(fn).toBeDefined();
  return { fn: fn!, needs: needs[0] };
}

if (!realUpstream) console.info(`[session-end-is-final static] ${SKIP_REAL}`);

describe.each(trees())("session-end-is-final in the generated %s tree", (_label, buildTree) => {
  it("the patch applied to both targets", async () => {
    const outcome = await buildTree();
    const mine = outcome.results.filter((r) => r.patch === "session-end-is-final").map((r) => [r.file, r.action]);
    expect(mine).toEqual([
      [HOOKS, "applied"],
      [HANDLER, "applied"],
    ]);
  });

  it("the hook client stamps data.sent_at_ms = Date.now() on the payload it posts", async () => {
    const sf = ast((await buildTree()).outDir, HANDLER);
    const stamp = sf.getFunction("stampSentAt");
    expect(stamp).toBeDefined();
    const field = stamp!.getDescendantsOfKind(SyntaxKind.PropertyAssignment).find((p) => p.getName() === "sent_at_ms");
    expect(field?.getInitializer()?.getText()).toBe("Date.now()");
    const data = sf
      .getDescendantsOfKind(SyntaxKind.PropertyAssignment)
      .filter((p) => p.getName() === "data" && (p.getParent() as import("ts-morph").ObjectLiteralExpression).getProperty("hook_type"));
    expect(data).toHaveLength(1);
    // spool-hook-events (a later patch) wraps it: spoolHookEvent(hookType, stampSentAt(parsedData)).
    const init = data[0].getInitializer()!;
    const stamped = init.getText() === "stampSentAt(parsedData)" ? init : init.getDescendantsOfKind(SyntaxKind.CallExpression).find((c) => c.getText() === "stampSentAt(parsedData)");
    expect(stamped?.getText(), init.getText()).toBe("stampSentAt(parsedData)");
  });

  it("the event function decides once, before reactivation, and a late event takes no state-changing branch", async () => {
    const sf = ast((await buildTree()).outDir, HOOKS);
    const { fn, needs } = core(sf);
    const flag = fn.getDescendantsOfKind(SyntaxKind.VariableDeclaration).find((d) => d.getName() === "sentBeforeEnd");
    expect(flag?.getInitializer()?.getText()).toBe("sentBeforeSessionEnd(sessionId, hookType, data)");
    expect(flag!.getStart()).toBeLessThan(needs.getStart());
    // the reactivation condition is guarded as a whole
    const init = needs.getInitializerOrThrow();
    expect(Node.isBinaryExpression(init)).toBe(true);
    if (!Node.isBinaryExpression(init)) return;
    expect(init.getOperatorToken().getKind()).toBe(SyntaxKind.AmpersandAmpersandToken);
    expect(init.getLeft().getText()).toBe("!sentBeforeEnd");
    expect(Node.isParenthesizedExpression(init.getRight())).toBe(true);

    const sw = fn
      .getDescendantsOfKind(SyntaxKind.SwitchStatement)
      .find((s) => s.getCaseBlock().getClauses().some((c) => Node.isCaseClause(c) && c.getExpression().getText() === '"SessionEnd"'));
    expect(sw?.getExpression().getText()).toBe("sentBeforeEnd ? null : hookType");
    expect(sw!.getCaseBlock().getClauses().some((c) => Node.isDefaultClause(c))).toBe(true);
    const after = sw!.getNextSiblingIfKind(SyntaxKind.IfStatement);
    expect(after?.getExpression().getText()).toBe("sentBeforeEnd");
    expect(after?.getThenStatement().getText()).toMatch(/summary = `Late \$\{hookType\}/);

    // the transcript-driven self-heal cannot reopen an ended session for a late event either
    const heals = fn.getDescendantsOfKind(SyntaxKind.IfStatement).filter((i) => /reactivateSession\.run/.test(i.getThenStatement().getText()) && /isErrorAtTail/.test(i.getExpression().getText()));
    expect(heals.length).toBeGreaterThan(0);
    for (const h of heals) expect(h.getExpression().getText()).toMatch(/^!sentBeforeEnd && /);
    // every other reactivation in the event function is under needsReactivation
    const reactivations = fn.getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => c.getExpression().getText() === "stmts.reactivateSession.run");
    for (const r of reactivations) {
      const guard = r.getFirstAncestorByKind(SyntaxKind.IfStatement)!.getExpression().getText();
      expect(guard === "needsReactivation" || guard.startsWith("!sentBeforeEnd && "), guard).toBe(true);
    }
  });

  it("the write queue gets orderBatch, and that function orders each session's stamped events by send time, stably", async () => {
    const sf = ast((await buildTree()).outDir, HOOKS);
    const call = sf.getDescendantsOfKind(SyntaxKind.CallExpression).find((c) => c.getExpression().getText() === "createWriteQueue");
    const opts = call?.getArguments()[0];
    expect(opts && Node.isObjectLiteralExpression(opts)).toBe(true);
    const order = (opts as import("ts-morph").ObjectLiteralExpression).getProperty("orderBatch");
    expect(order && Node.isPropertyAssignment(order) ? order.getInitializer()?.getText() : null).toBe("orderBySentAt");

    const code = `${sf.getFunction("hookSentAt")!.getText()}\n${sf.getFunction("orderBySentAt")!.getText()}\norderBySentAt;`;
    const orderBySentAt = vm.runInNewContext(code) as (items: unknown[]) => { name: string }[];
    const ev = (name: string, session: string | null, sent?: number) => ({ name, hookType: name, data: { session_id: session, ...(sent === undefined ? {} : { sent_at_ms: sent }) } });
    const batch = [
      ev("A:SessionEnd", "A", 30),
      ev("B:Stop", "B", 5),
      ev("A:PreToolUse", "A", 10),
      ev("A:unstamped", "A"),
      ev("A:PostToolUse", "A", 20),
      ev("B:PreToolUse", "B", 1),
      ev("A:tie-first", "A", 25),
      ev("A:tie-second", "A", 25),
      ev("none", null, 0),
    ];
    expect(orderBySentAt(batch).map((i) => i.name)).toEqual([
      "A:PreToolUse",
      "B:PreToolUse",
      "A:PostToolUse",
      "A:unstamped", // unstamped events keep their slot
      "A:tie-first",
      "B:Stop",
      "A:tie-second",
      "A:SessionEnd",
      "none",
    ]);
    // a permutation, never a loss: the write queue rejects anything else
    expect(new Set(orderBySentAt(batch))).toEqual(new Set(batch));
  });
});
