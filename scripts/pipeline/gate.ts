// The gate: prove the staged tree is what we meant to ship before it replaces the old one.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { isClientFile, type Patch } from "../../patches/define-patch.ts";
import { type Problem, renderFinding } from "../../patches/lib/errors.ts";
import { listFiles } from "../lib/hash.ts";
import { PatchEngine } from "./engine/engine.ts";
import { syntaxCheck } from "./syntax.ts";

export interface GateInput {
  dir: string;
  patches: Patch[];
  /** Files materialized from upstream. */
  upstreamFiles: string[];
  patchedFiles: string[];
  addedFiles: string[];
  /** The Node binary that will run the tree (syntax check). */
  nodeBinary: string;
  /** The engine that patched the tree: its parsed files and verify results are reused (default: a fresh one). */
  engine?: PatchEngine;
}

export interface GateOutcome {
  problems: Problem[];
  /** What was checked, for the log (e.g. connection sites). */
  notes: string[];
}

/**
 * Every patch's verify on its targets, its verifyTree over the whole tree (its property in every
 * file, including files no patch touched), a syntax check of each changed file (server and hook
 * JS compiled by the Node that runs them; client sources, which the bundler compiles, parsed by
 * TypeScript for syntax errors only), and the file list. Runs before the client build: the list
 * is of the staged tree, client sources and their maps included (the client step replaces them
 * with client/dist).
 */
export function assertGeneratedTree(input: GateInput): GateOutcome {
  const problems: Problem[] = [];
  const notes: string[] = [];
  const engine = input.engine ?? new PatchEngine();

  for (const patch of input.patches) {
    const present = (patch.optionalTargets ?? []).filter((f) => existsSync(path.join(input.dir, f)));
    for (const target of [...patch.targets, ...present]) {
      let text: string;
      try {
        text = readFileSync(path.join(input.dir, target), "utf8");
      } catch {
        problems.push({ patch: patch.id, file: target, message: "missing from the generated tree" });
        continue;
      }
      const view = engine.verifyView(target, text);
      for (const f of engine.verify(patch, view)) problems.push({ patch: patch.id, file: target, message: renderFinding(f) });
      for (const line of engine.report(patch, view)) notes.push(`[${patch.id}] ${line}`);
    }
  }

  const tree = engine.treeView(input.dir, { added: input.addedFiles });
  for (const patch of input.patches) {
    if (!patch.verifyTree) continue;
    for (const message of patch.verifyTree(tree)) problems.push({ patch: patch.id, file: "whole tree", message });
    for (const line of patch.reportTree?.(tree) ?? []) notes.push(`[${patch.id}] whole tree: ${line}`);
  }

  const changed = [...input.patchedFiles, ...input.addedFiles];
  const scripts = changed.filter((f) => !isClientFile(f) && /\.(c?js)$/.test(f));
  problems.push(...syntaxCheck(input.nodeBinary, scripts.map((rel) => ({ rel, abs: path.join(input.dir, rel) }))));
  const clientSources = changed.filter((f) => isClientFile(f) && /\.(tsx?|jsx?|mjs)$/.test(f));
  problems.push(...engine.parseErrors(clientSources.map((rel) => ({ rel, text: readFileSync(path.join(input.dir, rel), "utf8") }))));

  const expected = new Set([...input.upstreamFiles, ...input.addedFiles, ...input.patchedFiles.map((f) => `${f}.map`)]);
  const actual = listFiles(input.dir);
  for (const f of actual) if (!expected.has(f)) problems.push({ file: "file list", message: `${f} is neither upstream's nor a declared addition` });
  const actualSet = new Set(actual);
  for (const f of expected) if (!actualSet.has(f)) problems.push({ file: "file list", message: `${f} is missing from the generated tree` });
  return { problems, notes };
}
