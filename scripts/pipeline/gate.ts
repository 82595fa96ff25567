// Step 4: prove the staged tree is what we meant to ship before it replaces the old one.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { $ } from "zx/core";
import type { Patch } from "../../patches/define-patch.ts";
import { listFiles } from "../lib/hash.ts";
import { verifyView } from "./patch.ts";

export interface GateInput {
  dir: string;
  patches: Patch[];
  /** Files materialized from upstream. */
  upstreamFiles: string[];
  patchedFiles: string[];
  addedFiles: string[];
  /** The Node binary that will run the tree (syntax check). */
  nodeBinary: string;
}

export interface GateOutcome {
  problems: string[];
  /** What was checked, for the log (e.g. connection sites). */
  notes: string[];
}

/** Every patch's verify on the output, `node --check` of each changed file, and the file list. */
export async function assertGeneratedTree(input: GateInput): Promise<GateOutcome> {
  const problems: string[] = [];
  const notes: string[] = [];

  for (const patch of input.patches) {
    const present = (patch.optionalTargets ?? []).filter((f) => existsSync(path.join(input.dir, f)));
    for (const target of [...patch.targets, ...present]) {
      let text: string;
      try {
        text = readFileSync(path.join(input.dir, target), "utf8");
      } catch {
        problems.push(`[${patch.id}] ${target}: missing from the generated tree`);
        continue;
      }
      const view = verifyView(target, text);
      for (const p of patch.verify(view)) problems.push(`[${patch.id}] ${target}: ${p}`);
      for (const line of patch.report?.(view) ?? []) notes.push(`[${patch.id}] ${line}`);
    }
  }

  // zx's $: a failure carries the command, exit code and stderr; we keep the first stderr lines.
  const check = $({ quiet: true, nothrow: true });
  for (const file of [...input.patchedFiles, ...input.addedFiles].filter((f) => /\.(c?js)$/.test(f))) {
    const r = await check`${input.nodeBinary} --check ${path.join(input.dir, file)}`;
    if (r.exitCode !== 0) problems.push(`syntax: ${file}: ${r.stderr.trim().split("\n").slice(0, 5).join(" | ")}`);
  }

  const expected = new Set([...input.upstreamFiles, ...input.addedFiles, ...input.patchedFiles.map((f) => `${f}.map`)]);
  const actual = listFiles(input.dir);
  for (const f of actual) if (!expected.has(f)) problems.push(`file list: ${f} is neither upstream's nor a declared addition`);
  const actualSet = new Set(actual);
  for (const f of expected) if (!actualSet.has(f)) problems.push(`file list: ${f} is missing from the generated tree`);
  return { problems, notes };
}
