// Syntax check of many files in one Node process (a spawn of `node --check` per file costs ~50 ms
// each). Each file is compiled the way the CommonJS loader compiles it (vm.compileFunction with
// the module wrapper's parameters), by the Node that will run the tree, and never executed.
import { spawnSync } from "node:child_process";

const CHECKER = `
const fs = require("node:fs"), vm = require("node:vm");
const out = [];
for (const [rel, abs] of JSON.parse(fs.readFileSync(0, "utf8"))) {
  try {
    vm.compileFunction(fs.readFileSync(abs, "utf8"), ["exports", "require", "module", "__filename", "__dirname"], { filename: abs });
  } catch (e) {
    const where = String(e.stack || "").split("\\n")[0];
    out.push(rel + ": " + e.name + ": " + e.message + (where.startsWith(abs) ? " (line " + where.slice(abs.length + 1) + ")" : ""));
  }
}
process.stdout.write(JSON.stringify(out));
`;

/** One problem line per file that does not compile (`<file>: SyntaxError: … (line:col)`). */
export function syntaxCheck(nodeBinary: string, files: { rel: string; abs: string }[]): string[] {
  if (files.length === 0) return [];
  const r = spawnSync(nodeBinary, ["-e", CHECKER], { input: JSON.stringify(files.map((f) => [f.rel, f.abs])), encoding: "utf8" });
  if (r.status !== 0) return [`syntax: the checker (${nodeBinary}) failed: ${(r.stderr || "").trim().split("\n").slice(-3).join(" | ")}`];
  return (JSON.parse(r.stdout) as string[]).map((p) => `syntax: ${p}`);
}
