// Static check of immediate-transactions on a tree the test builds itself (the fixture, and the
// real upstream when AGENT_MONITOR_UPSTREAM is set): the compat wrapper's transaction(fn) hands
// over to the IMMEDIATE/savepoint runtime, the shared connection's db.transaction is made
// IMMEDIATE by default, and no SQL string anywhere in the tree still opens a deferred transaction.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { Node, SyntaxKind, type SourceFile } from "ts-morph";
import { describe, expect, it } from "vitest";
import { RUNTIME_FILE } from "../../patches/immediate-transactions.ts";
import { beginStatements, isDeferred } from "../../patches/lib/sqlite.ts";
import { listFiles } from "../../scripts/lib/hash.ts";
import { repoRoot } from "../../scripts/lib/paths.ts";
import { parseJs, verifyView } from "../../scripts/pipeline/patch.ts";
import { realUpstream, SKIP_REAL, trees } from "../support/build-once.ts";

const ID = "immediate-transactions";
const COMPAT = "server/compat-sqlite.js";
const DB = "server/db.js";

function ast(outDir: string, file: string): SourceFile {
  return parseJs(file, readFileSync(path.join(outDir, file), "utf8"));
}

/** `require("<spec>").<name>(…)`: returns the spec when `node` is such a call. */
function runtimeCall(node: Node | undefined, name: string): { spec: string; args: string[] } | null {
  if (!node || !Node.isCallExpression(node)) return null;
  const callee = node.getExpression();
  if (!Node.isPropertyAccessExpression(callee) || callee.getName() !== name) return null;
  const req = callee.getExpression();
  if (!Node.isCallExpression(req) || req.getExpression().getText() !== "require") return null;
  const arg = req.getArguments()[0];
  if (!arg || !Node.isStringLiteral(arg)) return null;
  return { spec: arg.getLiteralValue(), args: node.getArguments().map((a) => a.getText()) };
}

/** The file a relative require from `fromFile` loads (with Node's .js resolution). */
function resolved(fromFile: string, spec: string): string {
  const p = path.posix.join(path.posix.dirname(fromFile), spec);
  return p.endsWith(".js") ? p : `${p}.js`;
}

if (!realUpstream) describe("immediate-transactions in the generated real upstream tree", () => it.skip(SKIP_REAL, () => {}));

describe.each(trees())("immediate-transactions in the generated %s tree", (_label, buildTree) => {
  it("applied to compat-sqlite.js and db.js and added its runtime, byte for byte", async () => {
    const built = await buildTree();
    const mine = built.results.filter((r) => r.patch === ID && !r.discovered).map((r) => [r.file, r.action]);
    expect(mine).toEqual([
      [COMPAT, "applied"],
      [DB, "applied"],
      [RUNTIME_FILE, "applied"],
    ]);
    // Beyond its targets it patched every module with a connection of its own (clear-data.js; upstream's tests on the real tree).
    const found = built.results.filter((r) => r.patch === ID && r.discovered);
    expect(found.map((r) => r.file)).toContain("scripts/clear-data.js");
    for (const r of found) expect(readFileSync(path.join(built.outDir, r.file), "utf8")).toContain(".immediateByDefault(");
    expect(readFileSync(path.join(built.outDir, RUNTIME_FILE), "utf8")).toBe(readFileSync(path.join(repoRoot, "patches/runtime/immediate-transactions.js"), "utf8"));
  });

  it("compat-sqlite: transaction(fn) only returns compatTransaction(<connection>, fn) from the runtime", async () => {
    const built = await buildTree();
    const file = ast(built.outDir, COMPAT);
    const methods = file.getDescendantsOfKind(SyntaxKind.MethodDeclaration).filter((m) => m.getName() === "transaction");
    expect(methods).toHaveLength(1);
    const method = methods[0];
    expect(method.getParentIfKind(SyntaxKind.ClassDeclaration)).toBeDefined();
    const statements = method.getBody()!.asKindOrThrow(SyntaxKind.Block).getStatements();
    expect(statements).toHaveLength(1);
    const ret = statements[0].asKindOrThrow(SyntaxKind.ReturnStatement);
    const call = runtimeCall(ret.getExpression(), "compatTransaction");
    expect(call, ret.getText()).not.toBeNull();
    expect(existsSync(path.join(built.outDir, resolved(COMPAT, call!.spec))), `${call!.spec} resolves inside the tree`).toBe(true);
    expect(resolved(COMPAT, call!.spec)).toBe(RUNTIME_FILE);
    expect(call!.args).toEqual(["this._db", method.getParameters()[0].getName()]);
  });

  it("db.js: immediateByDefault(db) runs right after the shared connection opens, before any db.transaction(…)", async () => {
    const built = await buildTree();
    const file = ast(built.outDir, DB);
    const top = file.getStatements();
    const declIndex = top.findIndex((s) => Node.isVariableStatement(s) && s.getDeclarations().some((d) => d.getName() === "db"));
    expect(declIndex).toBeGreaterThanOrEqual(0);
    const next = top[declIndex + 1];
    expect(Node.isExpressionStatement(next)).toBe(true);
    const call = runtimeCall((next as import("ts-morph").ExpressionStatement).getExpression(), "immediateByDefault");
    expect(call, next.getText()).not.toBeNull();
    expect(call!.args).toEqual(["db"]);
    expect(resolved(DB, call!.spec)).toBe(RUNTIME_FILE);
    // same line as the declaration: the rest of db.js keeps upstream's line numbers
    expect(next.getStartLineNumber()).toBe(top[declIndex].getStartLineNumber());
    const txCalls = file
      .getDescendantsOfKind(SyntaxKind.CallExpression)
      .filter((c) => c.getExpression().getText() === "db.transaction");
    for (const c of txCalls) expect(c.getStart(), `line ${c.getStartLineNumber()}`).toBeGreaterThan(next.getEnd());
  });

  it("no SQL string in server/ or scripts/ opens a deferred transaction; db.js's raw BEGINs are IMMEDIATE", async () => {
    const built = await buildTree();
    const files = listFiles(built.outDir).filter((f) => /^(server|scripts)\//.test(f) && f.endsWith(".js") && !f.includes("__tests__/"));
    const all = files.flatMap((f) => beginStatements(verifyView(f, readFileSync(path.join(built.outDir, f), "utf8"))).map((b) => ({ f, b })));
    expect(all.filter(({ b }) => isDeferred(b)).map(({ f, b }) => `${f}:${b.line}`)).toEqual([]);
    // upstream runs one raw BEGIN on the shared connection (the agents CHECK-constraint rebuild)
    const inDb = all.filter(({ f }) => f === DB);
    expect(inDb.length).toBeGreaterThanOrEqual(1);
    for (const { b } of inDb) {
      expect(b.mode?.word).toBe("IMMEDIATE");
      expect(b.call.getExpression().getText()).toBe("db.exec");
    }
  });

  it("the gate lists the wrapper, the shared connection and each raw BEGIN with file:line", async () => {
    const built = await buildTree();
    const notes = built.notes.filter((n) => n.startsWith(`[${ID}] `));
    const file = ast(built.outDir, COMPAT);
    const line = file.getDescendantsOfKind(SyntaxKind.MethodDeclaration).find((m) => m.getName() === "transaction")!.getStartLineNumber();
    expect(notes).toContain(`[${ID}] ${COMPAT}:${line} transaction(fn): BEGIN IMMEDIATE by default; nested calls SAVEPOINT/RELEASE/ROLLBACK TO; .default/.deferred/.immediate/.exclusive`);
    const dbText = readFileSync(path.join(built.outDir, DB), "utf8");
    for (const b of beginStatements(verifyView(DB, dbText))) {
      expect(notes).toContain(`[${ID}] ${DB}:${b.line} raw BEGIN IMMEDIATE in db.exec(…): covered (IMMEDIATE)`);
    }
    expect(notes.some((n) => n.startsWith(`[${ID}] ${DB}:`) && n.includes("shared connection db"))).toBe(true);
  });
});
