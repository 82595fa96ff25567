// Static check of validate-hook-input on trees this test builds itself (the fixture, and the real
// upstream when AGENT_MONITOR_UPSTREAM is set): POST /event's first statement is the body check,
// before upstream's destructuring of req.body, the refusal and the transcript read; it counts through
// the write queue; server/patch-runtime/validate-hook-input.js is our module, byte for byte; and the
// patch's verify (the gate) fails on a tree where the check moved below the work.
import { readFileSync } from "node:fs";
import path from "node:path";
import { Node, SyntaxKind } from "ts-morph";
import { describe, expect, it } from "vitest";
import { patches } from "../../patches/index.ts";
import { callAnchor, findAll } from "../../patches/lib/find.ts";
import { verifyView } from "../../scripts/pipeline/patch.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";

const HOOKS = "server/routes/hooks.js";
const RUNTIME = "server/patch-runtime/validate-hook-input.js";
const patch = patches.find((p) => p.id === "validate-hook-input")!;

if (!realUpstream) console.info(`[validate-hook-input static] ${SKIP_REAL}`);

describe.each(trees())("validate-hook-input in the generated %s tree", (_label, buildTree) => {
  it("applied to hooks.js and added its runtime module (unchanged), after write-queue", async () => {
    const outcome = await buildTree();
    expect(outcome.results.filter((r) => r.patch === patch.id).map((r) => [r.file, r.action])).toEqual([
      [HOOKS, "applied"],
      [RUNTIME, "applied"],
    ]);
    expect(readFileSync(path.join(outcome.outDir, RUNTIME), "utf8")).toBe(readFileSync(path.join(repoRoot, "patches", "runtime", "validate-hook-input.js"), "utf8"));
    const ids = patches.map((p) => p.id);
    expect(ids.indexOf(patch.id)).toBeGreaterThan(ids.indexOf("write-queue"));
  });

  it("POST /event checks its body before it reads req.body's fields, refuses, reads a transcript or enqueues; the gate fails when the check moves down", async () => {
    const { outDir } = await buildTree();
    const text = readFileSync(path.join(outDir, HOOKS), "utf8");
    const view = verifyView(HOOKS, text);
    const [route] = findAll(view, callAnchor("router.post", "/event"));
    const handler = route.getArguments().at(-1)!;
    const statements = handler.getFirstDescendantByKindOrThrow(SyntaxKind.Block).getStatements();
    expect(statements[0].getText()).toBe("if (hookInput.rejected(req, res)) return;");
    const later = statements.slice(1).map((s) => s.getText());
    expect(later.findIndex((t) => /req\.body/.test(t))).toBeGreaterThanOrEqual(0);
    for (const work of [/writeQueue\.refusal\(\)/, /extractTranscriptForEvent\(/, /writeQueue\.enqueue\(/]) expect(later.some((t) => work.test(t)), String(work)).toBe(true);
    const decl = view.ast.getVariableDeclarationOrThrow("hookInput");
    expect(Node.isCallExpression(decl.getInitializer())).toBe(true);
    expect(decl.getInitializer()!.getText()).toMatch(/createHookInputCheck\(\{ count: writeQueue\.count \}\)$/);
    expect(patch.verify(view)).toEqual([]);

    // mutation: the check moved below upstream's destructuring of req.body
    const [door, next] = statements;
    const moved = text.slice(0, door.getStart()) + next.getText() + "\n  " + door.getText() + text.slice(next.getEnd());
    expect(patch.verify(verifyView(HOOKS, moved)).join("\n")).toMatch(/POST \/event works before it checks its body: the check is at line \d+/);
    // mutation: the check removed
    const removed = text.slice(0, door.getStart()) + text.slice(door.getEnd());
    expect(patch.verify(verifyView(HOOKS, removed)).join("\n")).toMatch(/POST \/event does not start with if \(hookInput\.rejected\(req, res\)\) return;/);
  });
});
