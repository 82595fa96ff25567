// Static check of busy-timeout on a tree the test builds itself (the fixture, and the real upstream
// when AGENT_MONITOR_UPSTREAM is set): every SQLite connection site in server/ and scripts/ is opened
// through withBusyTimeout(new …), no fixed busy_timeout pragma is left to override it, and the gate
// lists each site it checked.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { Node, SyntaxKind } from "ts-morph";
import { describe, expect, it } from "vitest";
import { CONNECTION_FILES, connectionSites, fixedBusyTimeouts, LATER_CONNECTION_FILES, RUNTIME_FILE } from "../../patches/busy-timeout.ts";
import { listFiles } from "../../scripts/lib/hash.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";
import { verifyView } from "../../scripts/pipeline/patch.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";

const ID = "busy-timeout";

function sitesOf(outDir: string) {
  const files = listFiles(outDir).filter((f) => /^(server|scripts)\//.test(f) && f.endsWith(".js") && !f.includes("__tests__/") && !f.startsWith("server/patch-runtime/"));
  return files.flatMap((f) => {
    const view = verifyView(f, readFileSync(path.join(outDir, f), "utf8"));
    return [
      ...connectionSites(view).map((s) => ({ file: f, site: s, fixed: null })),
      ...fixedBusyTimeouts(view).map((c) => ({ file: f, site: null, fixed: `${f}:${c.getStartLineNumber()} ${c.getText()}` })),
    ];
  });
}

if (!realUpstream) describe("busy-timeout in the generated real upstream tree", () => it.skip(SKIP_REAL, () => {}));

describe.each(trees())("busy-timeout in the generated %s tree", (_label, buildTree) => {
  it("applied to every connection file and added its runtime, byte for byte", async () => {
    const built = await buildTree();
    // Declared targets first; files found in the tree beyond them (e.g. upstream's own tests) are checked below.
    const mine = built.results.filter((r) => r.patch === ID && !r.discovered).map((r) => [r.file, r.action]);
    const later = LATER_CONNECTION_FILES.map((f) => [f, existsSync(path.join(built.upstream.dir, f)) ? "applied" : "absent"]);
    expect(mine).toEqual([...CONNECTION_FILES.map((f) => [f, "applied"]), ...later, [RUNTIME_FILE, "applied"]]);
    expect(readFileSync(path.join(built.outDir, RUNTIME_FILE), "utf8")).toBe(readFileSync(path.join(repoRoot, "patches/runtime/busy-timeout.js"), "utf8"));
  });

  it("every connection site in server/ and scripts/ sets busy_timeout as it opens (or is an exempt :memory: probe)", async () => {
    const built = await buildTree();
    const found = sitesOf(built.outDir).filter((x) => x.site);
    // at least the shared connection, the compat connection and clear-data's
    const laterPresent = LATER_CONNECTION_FILES.filter((f) => existsSync(path.join(built.outDir, f)));
    expect(new Set(found.filter((x) => x.site!.covered).map((x) => x.file))).toEqual(new Set([...CONNECTION_FILES, ...laterPresent]));
    const uncovered = found.filter((x) => !x.site!.covered && !x.site!.exempt);
    expect(uncovered.map((x) => `${x.file}:${x.site!.line} ${x.site!.text}`)).toEqual([]);
    for (const x of found.filter((y) => y.site!.exempt)) expect(x.site!.node.getArguments()[0].getText()).toMatch(/^["']:memory:["']$/);
  });

  it("the wrap is the connection expression itself: withBusyTimeout(new …) from the runtime, so nothing runs on it first", async () => {
    const built = await buildTree();
    for (const file of CONNECTION_FILES) {
      const view = verifyView(file, readFileSync(path.join(built.outDir, file), "utf8"));
      for (const s of connectionSites(view).filter((x) => x.covered)) {
        const call = s.node.getParentIfKindOrThrow(SyntaxKind.CallExpression);
        const req = call.getExpression().asKindOrThrow(SyntaxKind.PropertyAccessExpression).getExpression().asKindOrThrow(SyntaxKind.CallExpression);
        const spec = req.getArguments()[0].asKindOrThrow(SyntaxKind.StringLiteral).getLiteralValue();
        expect(path.posix.join(path.posix.dirname(file), `${spec}.js`), `${file}:${s.line}`).toBe(RUNTIME_FILE);
      }
    }
    // the shared connection: the declaration's initializer is the wrapped `new`, then the pragmas
    const db = verifyView("server/db.js", readFileSync(path.join(built.outDir, "server/db.js"), "utf8"));
    const decl = db.ast.getStatements().flatMap((s) => (Node.isVariableStatement(s) ? s.getDeclarations() : [])).find((d) => d.getName() === "db")!;
    expect(decl.getInitializer()!.getText()).toMatch(/^require\("\.\/patch-runtime\/busy-timeout"\)\.withBusyTimeout\(new Database\(/);
  });

  it("no fixed busy_timeout pragma is left anywhere to override AGENT_MONITOR_BUSY_TIMEOUT_MS", async () => {
    const built = await buildTree();
    expect(sitesOf(built.outDir).filter((x) => x.fixed).map((x) => x.fixed)).toEqual([]);
  });

  it("the gate lists every connection site of the whole tree it checked, with file:line", async () => {
    const built = await buildTree();
    const notes = built.notes.filter((n) => n.startsWith(`[${ID}] whole tree: `));
    const js = listFiles(built.outDir).filter((f) => f.endsWith(".js") && !f.startsWith("node_modules/") && !f.startsWith("client/"));
    const files = js.filter((f) => !f.startsWith("server/patch-runtime/"));
    const expected = files.flatMap((file) => {
      const view = verifyView(file, readFileSync(path.join(built.outDir, file), "utf8"));
      return connectionSites(view).map((s) => `[${ID}] whole tree: ${file}:${s.line} ${s.text}: ${s.exempt ? `exempt (${s.exempt})` : "busy_timeout set at open"}`);
    });
    expect(notes[0]).toMatch(new RegExp(`^\\[${ID}\\] whole tree: ${js.length} JS files scanned, \\d+ mention a SQLite driver or busy_timeout; ${expected.length} connection sites, 0 fixed busy_timeout overrides$`));
    expect(notes.slice(1)).toEqual(expected);
    // every file the patch found beyond its targets opens a connection it now covers
    for (const r of built.results.filter((x) => x.patch === ID && x.discovered)) {
      expect(expected.some((line) => line.includes(` ${r.file}:`) && line.endsWith("busy_timeout set at open")), r.file).toBe(true);
    }
  });
});
