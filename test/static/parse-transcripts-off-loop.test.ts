// On the AST of a tree this test builds: POST /event enqueues only inside transcriptPrefetch.run(…),
// the prefetcher fills the module's transcriptCache, and our runtime module is added unchanged.
import { readFileSync } from "node:fs";
import path from "node:path";
import { Node, SyntaxKind } from "ts-morph";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../scripts/lib/paths.ts";
import { parseJs } from "../../scripts/pipeline/patch.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";

const HOOKS = "server/routes/hooks.js";

describe.each(trees())("parse-transcripts-off-loop in the generated %s tree", (_label, buildTree) => {
  it("the enqueue in POST /event runs inside transcriptPrefetch.run(data.transcript_path, () => …)", async () => {
    const built = await buildTree();
    const sf = parseJs(HOOKS, readFileSync(path.join(built.outDir, HOOKS), "utf8"));
    const enqueues = sf.getDescendantsOfKind(SyntaxKind.CallExpression).filter((c) => c.getExpression().getText() === "writeQueue.enqueue");
    expect(enqueues).toHaveLength(1);
    const run = enqueues[0].getAncestors().find((a) => Node.isCallExpression(a) && a.getExpression().getText() === "transcriptPrefetch.run");
    expect(run, "enqueue is not wrapped").toBeDefined();
    const args = (run as import("ts-morph").CallExpression).getArguments();
    expect(args[0].getText()).toMatch(/^\w+\.transcript_path$/);
    expect(Node.isArrowFunction(args[1])).toBe(true);
    const route = run!.getAncestors().find((a) => Node.isCallExpression(a) && a.getExpression().getText() === "router.post");
    expect(route && Node.isCallExpression(route) ? route.getArguments()[0].getText() : null).toBe('"/event"');
  });

  it("the prefetcher is created once at module level over transcriptCache, and its runtime is ours byte for byte", async () => {
    const built = await buildTree();
    const sf = parseJs(HOOKS, readFileSync(path.join(built.outDir, HOOKS), "utf8"));
    const decl = sf.getVariableDeclarationOrThrow("transcriptPrefetch");
    expect(decl.getVariableStatementOrThrow().getParent()).toBe(sf);
    const init = decl.getInitializerOrThrow();
    expect(init.getText()).toContain('require("../patch-runtime/transcript-prefetch").createTranscriptPrefetcher(');
    expect(init.getText()).toContain("cache: transcriptCache");
    expect(sf.getVariableDeclarationOrThrow("transcriptCache").getInitializerOrThrow().getText()).toBe("new TranscriptCache()");
    expect(readFileSync(path.join(built.outDir, "server/patch-runtime/transcript-prefetch.js"), "utf8")).toBe(
      readFileSync(path.join(repoRoot, "patches/runtime/transcript-prefetch.js"), "utf8"),
    );
  });
});

if (!realUpstream) describe("parse-transcripts-off-loop in the generated real upstream tree", () => it.skip(SKIP_REAL, () => {}));
