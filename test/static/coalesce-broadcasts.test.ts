// Static check of coalesce-broadcasts on trees this test builds itself (the fixture, and the real
// upstream when AGENT_MONITOR_UPSTREAM is set): hooks.js reads no session/agent row in place to
// broadcast it (every such read is deferred through broadcast.latest, and the row readers are
// registered), websocket.js's hold flush sends coalesceHeldFrames(frames); and the verify (the gate)
// fails on a tree where one eager read is put back.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { eagerRowBroadcasts } from "../../patches/coalesce-broadcasts.ts";
import { patches } from "../../patches/index.ts";
import { verifyView } from "../../scripts/pipeline/patch.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";

const HOOKS = "server/routes/hooks.js";
const WS = "server/websocket.js";
const patch = patches.find((p) => p.id === "coalesce-broadcasts")!;

if (!realUpstream) console.info(`[coalesce-broadcasts static] ${SKIP_REAL}`);

describe.each(trees())("coalesce-broadcasts in the generated %s tree", (_label, buildTree) => {
  it("applied to websocket.js and hooks.js, last in order, after write-queue", async () => {
    const outcome = await buildTree();
    expect(outcome.results.filter((r) => r.patch === patch.id).map((r) => [r.file, r.action])).toEqual([
      [WS, "applied"],
      [HOOKS, "applied"],
    ]);
    const ids = patches.map((p) => p.id);
    expect(ids.indexOf(patch.id)).toBeGreaterThan(ids.indexOf("write-queue"));
  });

  it("hooks.js reads no row in place to broadcast it; the gate fails when one comes back", async () => {
    const { outDir } = await buildTree();
    const text = readFileSync(path.join(outDir, HOOKS), "utf8");
    const view = verifyView(HOOKS, text);
    expect(eagerRowBroadcasts(view)).toEqual([]);
    expect(text).toMatch(/broadcast\.latest\("session_updated", /);
    expect(text).toMatch(/broadcast\.readRowsWhenSent\(\{ "session_updated": \(rowId\) => stmts\.getSession\.get\(rowId\), "agent_updated": \(rowId\) => stmts\.getAgent\.get\(rowId\) \}\);/);
    expect(patch.verify(view)).toEqual([]);
    const first = /broadcast\.latest\("session_updated", (\w+), \/\* \[patch:coalesce-broadcasts\] \*\/ \(rowId\) => stmts\.getSession\.get\(rowId\)\)/.exec(text)!;
    const eager = text.replace(first[0], `broadcast("session_updated", stmts.getSession.get(${first[1]}))`);
    expect(patch.verify(verifyView(HOOKS, eager)).join("\n")).toContain('reads the row per broadcast instead of once per batch');
  });

  it("websocket.js flushes coalesceHeldFrames(frames); the gate fails on the plain loop", async () => {
    const { outDir } = await buildTree();
    const text = readFileSync(path.join(outDir, WS), "utf8");
    expect(patch.verify(verifyView(WS, text))).toEqual([]);
    const plain = text.replace(/\/\* \[patch:coalesce-broadcasts\] \*\/ coalesceHeldFrames\(frames\)/, "frames");
    expect(plain).not.toBe(text);
    expect(patch.verify(verifyView(WS, plain))).toContain("holdBroadcasts().flush() does not send coalesceHeldFrames(frames)");
  });
});
