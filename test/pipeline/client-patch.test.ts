// The client-patch contract on a small TSX page: a patch whose targets are under client/ applies
// before the client is built, is verified on the AST (TSX parsed as TSX), its verifyTree sees every
// client source (TreeView.clientFiles), a miss names the nearest candidate, re-applying is a no-op,
// and client/dist is built from the patched source, cached by it.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { type CallExpression, Node, SyntaxKind } from "ts-morph";
import { describe, expect, it } from "vitest";
import { definePatch, isClientPatch, marker, type VerifyFile } from "../../patches/define-patch.ts";
import { findAll, findOne } from "../../patches/lib/find.ts";
import { PatchTargetError } from "../../patches/lib/errors.ts";
import { fixtureUpstreamDir, repoRoot } from "../../scripts/lib/paths.ts";
import { build, BuildError } from "../../scripts/pipeline/build.ts";
import { applyPatchToText, memoryTreeView } from "../../scripts/pipeline/patch.ts";

const PAGE = "client/src/pages/Sessions.tsx";
const pageText = readFileSync(path.join(repoRoot, "test/fixtures/client-patch/Sessions.tsx"), "utf8");
const tmp = (p: string) => mkdtempSync(path.join(os.tmpdir(), p));

const isSubscribe = (n: Node): n is CallExpression =>
  Node.isCallExpression(n) && n.getExpression().getText() === "eventBus.subscribe" && n.getArguments()[0]?.getText() === '"session_updated"';

/** Subscribe callbacks that call load() directly: one request per frame. */
function directReloads(file: VerifyFile): CallExpression[] {
  return findAll(file, { shape: 'call eventBus.subscribe("session_updated", …)', kind: SyntaxKind.CallExpression, match: isSubscribe }).filter((call) =>
    (call.getArguments()[1]?.getDescendantsOfKind(SyntaxKind.CallExpression) ?? []).some((c) => c.getExpression().getText() === "load"),
  );
}

/** A toy client patch (not registered): reload through a coalescing scheduler instead of on every frame. */
const toyClientPatch = (variant = "") =>
  definePatch({
    id: "toy-client-coalesce",
    description: "Sessions page: reload through scheduleLoad instead of on every frame (test only)",
    why: "test of the client-patch contract",
    removeWhen: "never (test only)",
    targets: [PAGE],
    apply(file) {
      const call = findOne("toy-client-coalesce", file, { shape: 'call eventBus.subscribe("session_updated", …)', kind: SyntaxKind.CallExpression, match: isSubscribe });
      const cb = call.getArguments()[1];
      file.edit.overwrite(cb.getStart(), cb.getEnd(), `${marker("toy-client-coalesce")} () => scheduleLoad(load${variant})`);
    },
    verify: (file) => [
      ...directReloads(file).map((c) => `line ${c.getStartLineNumber()}: session_updated still calls load() on every frame`),
      ...(file.text.includes("scheduleLoad(load") ? [] : ["no session_updated reload goes through scheduleLoad"]),
    ],
    verifyTree: (tree) =>
      tree.clientFiles.filter((f) => tree.text(f).includes("eventBus.subscribe")).flatMap((f) => directReloads(tree.file(f)).map((c) => `${f}:${c.getStartLineNumber()} calls load() on every frame`)),
  });

describe("client patches", () => {
  it("applies to TSX, verifies on the AST, re-applies as a no-op, and names the nearest candidate on a miss", () => {
    const patch = toyClientPatch();
    expect(isClientPatch(patch)).toBe(true);
    const out = applyPatchToText(patch, PAGE, pageText);
    expect(out.action).toBe("applied");
    expect(out.text).toContain('eventBus.subscribe("session_updated", /* [patch:toy-client-coalesce] */ () => scheduleLoad(load))');
    expect(patch.verify(memoryTreeView({ [PAGE]: pageText }).file(PAGE))).toEqual([
      "line 16: session_updated still calls load() on every frame",
      "no session_updated reload goes through scheduleLoad",
    ]);
    expect(applyPatchToText(patch, PAGE, out.text)).toMatchObject({ action: "already-applied", text: out.text });

    const renamed = pageText.replace('eventBus.subscribe("session_updated"', 'eventBus.on("session_updated"');
    let err: unknown;
    try {
      applyPatchToText(patch, PAGE, renamed);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PatchTargetError);
    expect((err as Error).message).toBe(
      `[toy-client-coalesce] ${PAGE}: expected 1 call eventBus.subscribe("session_updated", …) but found 0. Nearest candidate: line 16: eventBus.on("session_updated", () => load()). Renamed or removed upstream?`,
    );
  });

  it("verifyTree sees every client source (TS, TSX, JS, JSX under client/src, not __tests__) and names the page that still reloads per frame", () => {
    const patch = toyClientPatch();
    const patched = applyPatchToText(patch, PAGE, pageText).text;
    const tree = memoryTreeView({
      [PAGE]: patched,
      "client/src/pages/Dashboard.tsx": pageText,
      "client/src/lib/eventBus.ts": "export const eventBus = { subscribe: (_t: string, _f: () => void) => () => {} };\n",
      "client/src/legacy.jsx": "export const A = () => <b/>;\n",
      "client/src/old.js": "export {};\n",
      "client/src/pages/__tests__/Sessions.test.tsx": pageText,
      "client/vite.config.ts": "export default {};\n",
      "server/index.js": "module.exports = {};\n",
    });
    expect(tree.clientFiles).toEqual(["client/src/legacy.jsx", "client/src/lib/eventBus.ts", "client/src/old.js", "client/src/pages/Dashboard.tsx", PAGE]);
    expect(patch.verifyTree!(tree)).toEqual(["client/src/pages/Dashboard.tsx:16 calls load() on every frame"]);
  });

  it("builds client/dist from the patched source; the cache key follows the patched sources", async () => {
    const up = path.join(tmp("fx-client-patch-"), "upstream");
    cpSync(fixtureUpstreamDir, up, { recursive: true, filter: (src) => !src.includes(`${path.sep}node_modules`) && !src.endsWith(`${path.sep}dist`) });
    mkdirSync(path.join(up, "client/src/pages"), { recursive: true });
    writeFileSync(path.join(up, PAGE), pageText);
    // This toy page is not the fixture's app: a client whose build copies src/ into dist/, so the dist shows the patched text as is.
    writeFileSync(path.join(up, "client/build.js"), 'const fs = require("fs");\nfs.rmSync(__dirname + "/dist", { recursive: true, force: true });\nfs.cpSync(__dirname + "/src", __dirname + "/dist", { recursive: true });\nconsole.log("fixture client build: copied");\n');
    writeFileSync(path.join(up, "client/src/unique.txt"), `${process.pid}-${Date.now()}-${Math.random()}\n`); // a cache miss first
    const out = path.join(tmp("fx-client-patch-out-"), "agent-monitor");
    const opts = { upstream: up, out, stamp: `${out}.stamp.json`, install: false, force: true, logDir: tmp("logs-") };

    const bare = await build({ ...opts, patches: [] });
    const patched = await build({ ...opts, patches: [toyClientPatch()] });
    expect(patched.results.map((r) => [r.patch, r.file, r.action])).toEqual([["toy-client-coalesce", PAGE, "applied"]]);
    expect(readFileSync(path.join(out, "client/dist/pages/Sessions.tsx"), "utf8")).toContain("scheduleLoad(load)");
    expect(patched.client!.inputHash).not.toBe(bare.client!.inputHash);
    expect(patched.client!.cached).toBe(false);
    // Same patch again: a cache hit. A changed client patch: a new key, built again.
    expect((await build({ ...opts, patches: [toyClientPatch()] })).client).toMatchObject({ cached: true, inputHash: patched.client!.inputHash });
    const changed = await build({ ...opts, patches: [toyClientPatch(" /* v2 */")] });
    expect(changed.client!.inputHash).not.toBe(patched.client!.inputHash);
    expect(readFileSync(path.join(out, "client/dist/pages/Sessions.tsx"), "utf8")).toContain("scheduleLoad(load /* v2 */)");

    // --no-client leaves the client patch out; "sources" patches and gates the sources without building them.
    const noClient = await build({ ...opts, client: false, patches: [toyClientPatch()] });
    expect(noClient.results).toEqual([]);
    const sources = await build({ ...opts, client: "sources", patches: [toyClientPatch()] });
    expect(sources.client).toBeUndefined();
    expect(readFileSync(path.join(out, PAGE), "utf8")).toContain("scheduleLoad(load)");
    expect(sources.stamp.fingerprints?.["toy-client-coalesce"]?.length).toBeGreaterThan(0);
  });

  it("the gate rejects a client patch that leaves the page unparsable", async () => {
    const up = path.join(tmp("fx-client-bad-"), "upstream");
    cpSync(fixtureUpstreamDir, up, { recursive: true, filter: (src) => !src.includes(`${path.sep}node_modules`) && !src.endsWith(`${path.sep}dist`) });
    mkdirSync(path.join(up, "client/src/pages"), { recursive: true });
    writeFileSync(path.join(up, PAGE), pageText);
    const out = path.join(tmp("fx-client-bad-out-"), "agent-monitor");
    const broken = toyClientPatch(") => {");
    const err = await build({ upstream: up, out, stamp: `${out}.stamp.json`, install: false, client: "sources", patches: [broken] }).catch((e: unknown) => e);
    expect((err as { step?: string }).step).toBe("gate");
    expect((err as BuildError).problems.some((p) => p.check === "syntax" && p.file === PAGE)).toBe(true);
    expect((err as BuildError).lines.some((p) => p.startsWith(`syntax: ${PAGE}: `))).toBe(true);
  });
});
