// Syntax checks. Server and hook JS: many files in one Node process (a spawn of `node --check` per file costs ~50 ms
// each). Each file is compiled the way the CommonJS loader compiles it (vm.compileFunction with
// the module wrapper's parameters), by the Node that will run the tree, and never executed.
// Client sources (TS/TSX/JS, compiled by the client's bundler): TypeScript's syntactic
// diagnostics, no type-check.
import { spawnSync } from "node:child_process";
import { ts } from "ts-morph";
import type { Problem } from "../../patches/lib/errors.ts";

const CHECKER = `
const fs = require("node:fs"), vm = require("node:vm");
const out = [];
for (const [rel, abs] of JSON.parse(fs.readFileSync(0, "utf8"))) {
  try {
    vm.compileFunction(fs.readFileSync(abs, "utf8"), ["exports", "require", "module", "__filename", "__dirname"], { filename: abs });
  } catch (e) {
    const where = String(e.stack || "").split("\\n")[0];
    out.push([rel, e.name + ": " + e.message, where.startsWith(abs) ? where.slice(abs.length + 1) : null]);
  }
}
process.stdout.write(JSON.stringify(out));
`;

/** A problem per file that does not compile (rendered `syntax: <file>: SyntaxError: … (line L:C)`). */
export function syntaxCheck(nodeBinary: string, files: { rel: string; abs: string }[]): Problem[] {
  if (files.length === 0) return [];
  const r = spawnSync(nodeBinary, ["-e", CHECKER], { input: JSON.stringify(files.map((f) => [f.rel, f.abs])), encoding: "utf8" });
  if (r.status !== 0) return [{ file: "syntax", message: `the checker (${nodeBinary}) failed: ${(r.stderr || "").trim().split("\n").slice(-3).join(" | ")}` }];
  return (JSON.parse(r.stdout) as [string, string, string | null][]).map(([file, message, at]) => syntaxProblem(file, message, at));
}

/** `at` is "line:col" as the compiler reports it. */
function syntaxProblem(file: string, message: string, at: string | null): Problem {
  const line = at ? Number(at.split(":")[0]) : undefined;
  return { check: "syntax", file, message: at ? `${message} (line ${at})` : message, ...(line ? { line } : {}) };
}

/** A problem per client source that does not parse (rendered `syntax: <file>: <message> (line L:C)`). */
export function parseErrors(files: { rel: string; text: string }[]): Problem[] {
  const out: Problem[] = [];
  for (const f of files) {
    const { diagnostics = [] } = ts.transpileModule(f.text, { fileName: f.rel, reportDiagnostics: true, compilerOptions: { jsx: ts.JsxEmit.Preserve, allowJs: true, noLib: true, noResolve: true, isolatedModules: false } });
    for (const d of diagnostics) {
      const at = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : null;
      out.push(syntaxProblem(f.rel, ts.flattenDiagnosticMessageText(d.messageText, " "), at ? `${at.line + 1}:${at.character + 1}` : null));
    }
  }
  return out;
}
