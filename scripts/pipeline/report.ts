// Review output: each patch's unified diff against the text it received, and a results table.
import { createTwoFilesPatch } from "diff";
import type { PatchResult } from "./patch.ts";

/** One unified diff per applied patch and file, in application order. */
export function patchDiffs(results: PatchResult[]): string {
  const parts: string[] = [];
  for (const r of results) {
    if (r.action !== "applied" || r.before === undefined || r.after === undefined) continue;
    const header = `# ${r.patch}: ${r.file} (+${r.additions} -${r.deletions})`;
    const from = r.before === "" ? "/dev/null" : `a/${r.file}`;
    parts.push(`${header}\n${createTwoFilesPatch(from, `b/${r.file}`, r.before, r.after, "", "", { context: 3 }).split("\n").slice(1).join("\n")}`);
  }
  return parts.join("\n");
}

/** The per-patch results as an aligned text table. */
export function resultsTable(results: PatchResult[]): string {
  const rows = [["patch", "file", "result", "+", "-"], ...results.map((r) => [r.patch, r.file, r.action, String(r.additions), String(r.deletions)])];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i >= 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd()).join("\n");
}
