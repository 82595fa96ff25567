#!/usr/bin/env -S npx tsx
// Runs upstream's own server test suite (node --test server/__tests__/*.test.js, Node 22) on the
// unpatched and the patched tree at the same commit, and lists every test whose outcome changed.
// Both runs use a full copy of the upstream checkout (bin/, mcp/ … are needed by some tests) with,
// for the patched run, the generated files laid over it.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { cliArgs, existingPath, isMain, option } from "./lib/cli.ts";
import { runCli } from "./lib/dashboard.ts";
import { UserError } from "./lib/errors.ts";
import { ensureNode22 } from "./lib/node22.ts";
import { ensureRuntimeDeps } from "./pipeline/install.ts";
import { repoRoot } from "./lib/paths.ts";

export interface SuiteResult {
  counts: { passed: number; failed: number; skipped: number };
  byTest: Map<string, string>;
}

export interface SuiteComparison {
  unpatched: SuiteResult;
  patched: SuiteResult;
  /** Tests that pass unpatched but not patched. */
  regressions: string[];
  /** Tests that fail unpatched but pass patched. */
  fixed: string[];
}

function runSuite(tree: string, node: string, modules: string): SuiteResult {
  symlinkSync(modules, path.join(tree, "node_modules"), "dir");
  const home = mkdtempSync(path.join(os.tmpdir(), "am-suite-home-"));
  const files = readdirSync(path.join(tree, "server", "__tests__")).filter((f) => f.endsWith(".test.js")).map((f) => `server/__tests__/${f}`);
  const r = spawnSync(node, ["--test", `--test-reporter=${path.join(repoRoot, "scripts/lib/test-reporter.mjs")}`, ...files], {
    cwd: tree,
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
    timeout: 15 * 60_000,
    env: { PATH: process.env.PATH ?? "", HOME: home, CLAUDE_HOME: path.join(home, ".claude"), DASHBOARD_UPDATE_CHECK: "0", DASHBOARD_LIVENESS_PROBE: "0", TZ: "UTC" },
  });
  rmSync(home, { recursive: true, force: true });
  const byTest = new Map<string, string>();
  const counts = { passed: 0, failed: 0, skipped: 0 };
  for (const line of r.stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    const t = JSON.parse(line) as { file: string; line: number; name: string; status: "passed" | "failed" | "skipped" };
    const key = `${path.relative(tree, t.file ?? "")}: ${t.name}`;
    // Same name twice in one file: keep the worst outcome.
    if (byTest.get(key) !== "failed") byTest.set(key, t.status);
    counts[t.status]++;
  }
  if (byTest.size === 0) throw new Error(`upstream test suite produced no results in ${tree}: ${r.stderr.slice(-500)}`);
  return { counts, byTest };
}

/** `upstreamDir`: a full checkout at the commit; `generatedDir`: the patched tree built from it. */
export async function compareSuites(upstreamDir: string, generatedDir: string): Promise<SuiteComparison> {
  const node = ensureNode22();
  const modules = (await ensureRuntimeDeps(upstreamDir, () => {}, { dev: true }))!;
  const work = mkdtempSync(path.join(os.tmpdir(), "am-suite-"));
  try {
    const plain = path.join(work, "unpatched");
    const patched = path.join(work, "patched");
    cpSync(upstreamDir, plain, { recursive: true });
    cpSync(upstreamDir, patched, { recursive: true });
    // Not the tree's own production node_modules: the suite needs the dev install linked below.
    const ownModules = path.join(generatedDir, "node_modules");
    cpSync(generatedDir, patched, { recursive: true, force: true, filter: (src) => src !== ownModules });
    const a = runSuite(plain, node, modules);
    const b = runSuite(patched, node, modules);
    const regressions = [...a.byTest].filter(([k, s]) => s === "passed" && b.byTest.get(k) !== "passed").map(([k]) => k);
    const fixed = [...a.byTest].filter(([k, s]) => s === "failed" && b.byTest.get(k) === "passed").map(([k]) => k);
    return { unpatched: a, patched: b, regressions, fixed };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export const UPSTREAM_SUITE_CLI = {
  command: "npx tsx scripts/upstream-suite.ts",
  description: "Runs upstream's server tests on both trees and lists tests whose outcome changed (exit 1 on a regression).",
  options: {
    upstream: option("<dir>", "upstream checkout at the pinned commit", existingPath),
    generated: option("<dir>", "the patched tree built from it", existingPath),
  },
};

async function main(): Promise<number> {
  const parsed = cliArgs(UPSTREAM_SUITE_CLI);
  if (!parsed) return 0;
  const { upstream, generated } = parsed.values;
  if (!upstream || !generated) throw new UserError(`both --upstream and --generated are required; see ${UPSTREAM_SUITE_CLI.command} --help`);
  const c = await compareSuites(upstream, generated);
  const fmt = (s: SuiteResult) => `${s.counts.passed} passed, ${s.counts.failed} failed, ${s.counts.skipped} skipped`;
  console.log(`unpatched: ${fmt(c.unpatched)}\npatched:   ${fmt(c.patched)}`);
  for (const t of c.regressions) console.log(`REGRESSION ${t}`);
  for (const t of c.fixed) console.log(`fixed      ${t}`);
  return c.regressions.length > 0 ? 1 : 0;
}

if (isMain(import.meta.url)) runCli(main);
