#!/usr/bin/env -S npx tsx
// Builds every release tag in upstream.pin.json and prints tag -> built / failed (with reason).
import { readFileSync } from "node:fs";
import path from "node:path";
import { isClean, runDrift } from "./drift.ts";
import { cliArgs, isMain } from "./lib/cli.ts";
import { runCli } from "./lib/dashboard.ts";
import { UserError } from "./lib/errors.ts";
import { repoRoot } from "./lib/paths.ts";
import { readPin } from "./lib/pin.ts";
import { UPSTREAM_ENV } from "./pipeline/fetch.ts";

export interface MatrixRow {
  tag: string;
  commit: string;
  ok: boolean;
  /** Failure lines (patch/gate problems), empty when ok. */
  problems: string[];
  ms: number;
}

export interface Declared {
  reason: string;
  expect: string;
}

export function declaredUnsupported(): Record<string, Declared> {
  return JSON.parse(readFileSync(path.join(repoRoot, "patches/release-support.json"), "utf8")).unsupported;
}

/** The drift columns of the pin's releases (scripts/drift.ts), as pass/fail rows with the failure lines. */
export async function runMatrix(upstream: string): Promise<MatrixRow[]> {
  const pin = readPin();
  const columns = await runDrift({ upstream, refs: Object.keys(pin.releases), pin });
  return columns.map((col) => {
    const problems = [...Object.entries(col.cells).filter(([, c]) => c.status === "failed" || c.status === "skipped").map(([id, c]) => `[${id}] ${c.reason}`), ...col.errors];
    return { tag: col.ref, commit: pin.releases[col.ref], ok: isClean(col, false), problems, ms: col.ms };
  });
}

export const RELEASE_MATRIX_CLI = {
  command: "npx tsx scripts/release-matrix.ts",
  positionals: "[upstream]",
  description: `Builds every release tag in upstream.pin.json from a local clone or mirror of upstream (the
argument, else $${UPSTREAM_ENV}) and prints tag -> built / failed (with the reason) as a Markdown
table. Exit 1 when a release does not behave as declared in patches/release-support.json.`,
  options: {},
};

async function main(): Promise<number> {
  const parsed = cliArgs(RELEASE_MATRIX_CLI);
  if (!parsed) return 0;
  const upstream = parsed.positionals[0] || process.env[UPSTREAM_ENV];
  if (!upstream) throw new UserError(`release-matrix needs a local clone or mirror of upstream: pass it as the argument or set ${UPSTREAM_ENV}`);
  if (parsed.positionals.length > 1) throw new UserError(`release-matrix takes one upstream, got ${parsed.positionals.length}; see ${RELEASE_MATRIX_CLI.command} --help`);
  const declared = declaredUnsupported();
  const rows = await runMatrix(upstream);
  console.log("| tag | commit | result | declared | time |\n|---|---|---|---|---|");
  for (const r of rows) {
    const d = declared[r.tag];
    const result = r.ok ? "all gates pass" : `fails: ${r.problems.join(" / ")}`;
    console.log(`| ${r.tag} | ${r.commit.slice(0, 7)} | ${result} | ${d ? d.reason : "-"} | ${(r.ms / 1000).toFixed(1)}s |`);
  }
  const bad = rows.filter((r) => (r.ok ? !!declared[r.tag] : !declared[r.tag] || !r.problems.some((p) => p.includes(declared[r.tag].expect))));
  if (bad.length > 0) console.error(`not as declared in patches/release-support.json: ${bad.map((r) => r.tag).join(", ")}`);
  return bad.length > 0 ? 1 : 0;
}

if (isMain(import.meta.url)) runCli(main);
