#!/usr/bin/env -S npx tsx
// Builds every release tag in upstream.pin.json and prints tag -> built / failed (with reason).
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { patches } from "../patches/index.ts";
import { UserError } from "./lib/errors.ts";
import { repoRoot } from "./lib/paths.ts";
import { readPin } from "./lib/pin.ts";
import { build, BuildError } from "./pipeline/build.ts";
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

export async function runMatrix(upstream: string): Promise<MatrixRow[]> {
  const pin = readPin();
  const rows: MatrixRow[] = [];
  for (const [tag, commit] of Object.entries(pin.releases)) {
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), `am-matrix-${tag}-`)), "agent-monitor");
    const t0 = performance.now();
    try {
      // The matrix is about patches and gates: no client build or npm install per release.
      await build({ upstream, ref: tag, out, stamp: `${out}.stamp.json`, patches, force: true, client: false, install: false });
      rows.push({ tag, commit, ok: true, problems: [], ms: performance.now() - t0 });
    } catch (err) {
      const problems = err instanceof BuildError ? err.problems : [(err as Error).message];
      rows.push({ tag, commit, ok: false, problems, ms: performance.now() - t0 });
    }
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const upstream = process.argv[2] || process.env[UPSTREAM_ENV];
  if (!upstream) {
    console.error(new UserError(`usage: npx tsx scripts/release-matrix.ts <upstream clone or mirror> (or set ${UPSTREAM_ENV})`).message);
    process.exit(1);
  }
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
  process.exit(bad.length > 0 ? 1 : 0);
}
