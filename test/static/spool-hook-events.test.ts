// Static check of spool-hook-events on trees this test builds itself (the fixture, and the real
// upstream when AGENT_MONITOR_UPSTREAM is set): the hook client spools the stamped data before the
// payload is sent; the write queue's run and afterCommit go through the event-id table; the replay
// starts; the runtime module is ours byte for byte; and verify / verifyTree fail on mutated trees.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { patches } from "../../patches/index.ts";
import { treeView, verifyView } from "../../scripts/pipeline/patch.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";

const HOOKS = "server/routes/hooks.js";
const HANDLER = "scripts/hook-handler.js";
const RUNTIME = "server/patch-runtime/hook-spool.js";
const patch = patches.find((p) => p.id === "spool-hook-events")!;

if (!realUpstream) console.info(`[spool-hook-events static] ${SKIP_REAL}`);

describe.each(trees())("spool-hook-events in the generated %s tree", (_label, buildTree) => {
  it("applied to hooks.js and hook-handler.js, added its runtime module (unchanged), after the patches it needs", async () => {
    const outcome = await buildTree();
    expect(outcome.results.filter((r) => r.patch === patch.id).map((r) => [r.file, r.action])).toEqual([
      [HOOKS, "applied"],
      [HANDLER, "applied"],
      [RUNTIME, "applied"],
    ]);
    expect(readFileSync(path.join(outcome.outDir, RUNTIME), "utf8")).toBe(readFileSync(path.join(repoRoot, "patches", "runtime", "hook-spool.js"), "utf8"));
    const ids = patches.map((p) => p.id);
    for (const need of patch.needs ?? []) expect(ids.indexOf(patch.id)).toBeGreaterThan(ids.indexOf(need));
  });

  it("the handler spools the stamped data in the payload; the gate fails when it does not", async () => {
    const { outDir } = await buildTree();
    const text = readFileSync(path.join(outDir, HANDLER), "utf8");
    expect(text).toMatch(/data: spoolHookEvent\(hookType, stampSentAt\(parsedData\)\)/);
    expect(patch.verify(verifyView(HANDLER, text))).toEqual([]);
    const unspooled = text.replace(/spoolHookEvent\(hookType, (stampSentAt\(parsedData\))\)/, "$1");
    expect(patch.verify(verifyView(HANDLER, unspooled)).join("\n")).toMatch(/the posted data is not spooled first/);
    // whole tree: the same mutation is named with its file and line
    const view = treeView(outDir, { overlay: new Map([[HANDLER, unspooled]]), added: [RUNTIME] });
    expect(patch.verifyTree!(view).join("\n")).toMatch(/^scripts\/hook-handler\.js:\d+ posts hook data without spooling it first/m);
    expect(patch.verifyTree!(treeView(outDir, { added: [RUNTIME] }))).toEqual([]);
  });

  it("the queue stores each event id once and the replay starts; the gate fails when either is undone", async () => {
    const { outDir } = await buildTree();
    const text = readFileSync(path.join(outDir, HOOKS), "utf8");
    expect(patch.verify(verifyView(HOOKS, text))).toEqual([]);
    const unwrapped = text.replace(/run: spoolEventIds\.run\(([\s\S]*?)\) \/\* \[patch:spool-hook-events\] \*\//, "run: $1");
    expect(patch.verify(verifyView(HOOKS, unwrapped)).join("\n")).toMatch(/run is not spoolEventIds\.run/);
    const noReplay = text.replace(/^spoolReplay\.start\(\);$/m, "");
    expect(patch.verify(verifyView(HOOKS, noReplay)).join("\n")).toMatch(/expected 1 top-level spoolReplay\.start\(\), found 0/);
  });
});
