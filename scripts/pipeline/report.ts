// Review output: each patch's unified diff against the text it received, and a results table.
import { createTwoFilesPatch } from "diff";
import type { PatchResult } from "./patch.ts";

function unified(file: string, before: string, after: string): string {
  const from = before === "" ? "/dev/null" : `a/${file}`;
  return createTwoFilesPatch(from, `b/${file}`, before, after, "", "", { context: 3 }).split("\n").slice(1).join("\n");
}

/**
 * The review report: one unified diff per applied patch and file, in application order (each
 * against the text that patch received), then per file the whole change against upstream.
 */
export function patchDiffs(results: PatchResult[]): string {
  const parts: string[] = [];
  const first = new Map<string, string>();
  const last = new Map<string, string>();
  for (const r of results) {
    if (r.action !== "applied" || r.before === undefined || r.after === undefined) continue;
    parts.push(`# ${r.patch}: ${r.file} (+${r.additions} -${r.deletions})\n${unified(r.file, r.before, r.after)}`);
    if (!first.has(r.file)) first.set(r.file, r.before);
    last.set(r.file, r.after);
  }
  for (const [file, before] of first) {
    const patchesOnFile = results.filter((r) => r.file === file && r.action === "applied").map((r) => r.patch);
    if (patchesOnFile.length < 2) continue; // a single patch's diff above is already the whole change
    parts.push(`# all patches (${patchesOnFile.join(", ")}): ${file} against upstream\n${unified(file, before, last.get(file)!)}`);
  }
  return parts.join("\n");
}

/** The per-patch results as an aligned text table. */
export function resultsTable(results: PatchResult[]): string {
  const rows = [["patch", "file", "result", "+", "-"], ...results.map((r) => [r.patch, r.file, r.action, String(r.additions), String(r.deletions)])];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i >= 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd()).join("\n");
}
