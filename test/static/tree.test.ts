// Whole-tree properties of a tree this test builds itself: every patch applied to pristine
// upstream, re-applying everything to the output is a no-op, each edit is marked, each patched
// file has a source map back to upstream.
import { cpSync, existsSync, mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { withoutClientTargets } from "../../patches/define-patch.ts";
import { patches } from "../../patches/index.ts";
import { runPatches } from "../../scripts/pipeline/patch.ts";
import { SKIP_REAL, trees, realUpstream } from "../support/build-once.ts";

describe.each(trees())("generated tree: %s", (_label, buildTree) => {
  it("is built from the source it names (the fixture really is the fixture)", async () => {
    const built = await buildTree();
    expect(built.stamp.upstream.repository).toBe(_label === "fixture" ? "directory:test/fixtures/upstream" : "https://github.com/hoangsonww/Claude-Code-Agent-Monitor.git");
  });

  it("applies every patch to every target of the pristine upstream (none was already there)", async () => {
    const built = await buildTree();
    const present = (f: string) => existsSync(path.join(built.upstream.dir, f));
    const expected = patches.flatMap((p) =>
      [...p.targets, ...(p.optionalTargets ?? []).filter(present), ...Object.keys(p.adds ?? {})].map((f) => `${p.id} ${f} applied`),
    );
    // Files a patch found in the tree beyond its declared targets (discover) come right after them.
    const declared = built.results.filter((r) => r.action !== "absent" && !r.discovered);
    expect(declared.map((r) => `${r.patch} ${r.file} ${r.action}`)).toEqual(expected);
    for (const r of built.results.filter((x) => x.discovered)) expect(r.action, `${r.patch} ${r.file}`).toBe("applied");
  });

  // The output ships client/dist, not the client sources: the client patches' re-apply is proven on
  // their fixture pairs (test/unit/patch-fixtures.test.ts), the server patches' here on the whole tree.
  const serverPatches = patches.flatMap((p) => withoutClientTargets(p) ?? []);

  it("re-applying all server patches to the output changes nothing (idempotent)", async () => {
    const built = await buildTree();
    const copy = path.join(mkdtempSync(path.join(os.tmpdir(), "am-reapply-")), "t");
    cpSync(built.outDir, copy, { recursive: true });
    const again = runPatches(copy, serverPatches.map((p) => ({ ...p, adds: undefined })));
    expect(again.ok).toBe(true);
    expect(again.patchedFiles).toEqual([]);
    expect(new Set(again.results.filter((r) => r.action !== "absent").map((r) => r.action))).toEqual(new Set(serverPatches.length ? ["already-applied"] : []));
  });

  it("writes the review report: each patch's diff, then each multiply-patched file against upstream", async () => {
    const built = await buildTree();
    const report = readFileSync(`${built.outDir}.patches.diff`, "utf8");
    for (const r of built.results.filter((x) => x.action === "applied")) expect(report).toContain(`# ${r.patch}: ${r.file} (+${r.additions} -${r.deletions})`);
    const onHooks = patches.filter((p) => p.targets.includes("server/routes/hooks.js")).map((p) => p.id);
    expect(report).toContain(`# all patches (${onHooks.join(", ")}): server/routes/hooks.js against upstream`);
  });

  it("marks each server patch's edits and writes a source map back to upstream for each patched file", async () => {
    const built = await buildTree();
    for (const p of serverPatches) {
      for (const target of p.targets) {
        const text = readFileSync(path.join(built.outDir, target), "utf8");
        expect(text, `${target} lacks the marker of ${p.id}`).toContain(`[patch:${p.id}]`);
        const map = JSON.parse(readFileSync(path.join(built.outDir, `${target}.map`), "utf8"));
        expect(map.sources).toEqual([target]);
        expect(map.sourcesContent[0]).not.toBe(text);
      }
    }
  });
});

if (!realUpstream) describe("generated tree: real upstream", () => it.skip(SKIP_REAL, () => {}));
