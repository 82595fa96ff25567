// Which two trees the bench compares, and how they are built (or reused) with the pipeline CLI
// `npx tsx scripts/build.ts`. Kept in one small module so a change in the CLI is a local fix.
//
//   unpatched: --unpatched --upstream <src> --out .cache/bench/unpatched-<hash> --stamp <out>.stamp.json
//   patched:   real upstream ($AGENT_MONITOR_UPSTREAM): --upstream <src> → the default .generated/agent-monitor
//              fixture (default):                      --upstream test/fixtures/upstream --out .cache/bench/fixture-patched
// The CLI reuses an output whose stamp still matches its inputs ("up to date"); --force rebuilds.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { cacheDir, defaultOutDir, fixtureUpstreamDir, repoRoot } from "../scripts/lib/paths.ts";

const execFileAsync = promisify(execFile);

export const UPSTREAM_ENV = "AGENT_MONITOR_UPSTREAM";

/** unpatched and patched are built here; baseline is a tree built elsewhere (--baseline), run as it is. */
export type TreeKind = "unpatched" | "patched" | "baseline";

export interface BenchSource {
  /** What --upstream gets. */
  upstream: string;
  /** "fixture" (default, CI) or "upstream" (real upstream via $AGENT_MONITOR_UPSTREAM or --upstream). */
  kind: "fixture" | "upstream";
}

export interface BuiltTree {
  kind: TreeKind;
  dir: string;
  /** Last line the build CLI printed ("up to date …" or "built …"). */
  buildNote: string;
}

/** The source to benchmark: an explicit --upstream, else $AGENT_MONITOR_UPSTREAM, else the fixture. */
export function resolveSource(explicit?: string): BenchSource {
  const fromEnv = process.env[UPSTREAM_ENV]?.trim();
  if (explicit) return { upstream: explicit, kind: path.resolve(explicit) === fixtureUpstreamDir ? "fixture" : "upstream" };
  if (fromEnv) return { upstream: fromEnv, kind: "upstream" };
  if (!existsSync(path.join(fixtureUpstreamDir, "server", "index.js"))) {
    throw new Error(`the fixture ${path.relative(repoRoot, fixtureUpstreamDir)} has no server/index.js; set ${UPSTREAM_ENV} to a real upstream tree`);
  }
  return { upstream: fixtureUpstreamDir, kind: "fixture" };
}

function sourceHash(source: BenchSource): string {
  const id = /^[a-z]+:\/\//i.test(source.upstream) ? source.upstream : path.resolve(source.upstream);
  return createHash("sha256").update(id).digest("hex").slice(0, 12);
}

/** Output folder and stamp file for a tree, exactly as passed to the CLI (null = CLI default). */
export function treeLocation(source: BenchSource, kind: TreeKind): { out: string | null; stamp: string | null; dir: string } {
  const bench = path.join(cacheDir, "bench");
  if (kind === "unpatched") {
    const out = path.join(bench, `unpatched-${sourceHash(source)}`);
    return { out, stamp: `${out}.stamp.json`, dir: out };
  }
  if (source.kind === "upstream") return { out: null, stamp: null, dir: defaultOutDir };
  const out = path.join(bench, "fixture-patched");
  return { out, stamp: `${out}.stamp.json`, dir: out };
}

export function buildArgs(source: BenchSource, kind: TreeKind, force: boolean): string[] {
  const loc = treeLocation(source, kind);
  const args = ["tsx", "scripts/build.ts", "--upstream", source.upstream, "--quiet"];
  if (loc.out) args.push("--out", loc.out);
  if (loc.stamp) args.push("--stamp", loc.stamp);
  if (kind === "unpatched") args.push("--unpatched");
  if (force) args.push("--force");
  return args;
}

export async function buildTree(source: BenchSource, kind: TreeKind, opts: { force?: boolean } = {}): Promise<BuiltTree> {
  const args = buildArgs(source, kind, opts.force ?? false);
  let stdout = "";
  try {
    ({ stdout } = await execFileAsync("npx", args, { cwd: repoRoot, maxBuffer: 32 * 1024 * 1024 }));
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    const detail = `${e.stdout ?? ""}\n${e.stderr ?? ""}`.trim().split("\n").slice(-12).join("\n");
    throw new Error(`building the ${kind} tree failed: npx ${args.join(" ")}\n${detail || e.message}`);
  }
  const dir = treeLocation(source, kind).dir;
  if (!existsSync(path.join(dir, "server", "index.js"))) throw new Error(`the ${kind} build produced no ${path.join(dir, "server", "index.js")}`);
  const lines = stdout.trim().split("\n");
  return { kind, dir, buildNote: (lines[lines.length - 1] ?? "").replace(/\x1b\[[0-9;]*m/g, "") };
}

/** A generated tree built elsewhere (e.g. an earlier main's .generated/agent-monitor), run as it is. */
export function existingTree(dir: string, kind: TreeKind): BuiltTree {
  const abs = path.resolve(dir);
  if (!existsSync(path.join(abs, "server", "index.js"))) {
    throw new Error(`the ${kind} tree ${dir} has no server/index.js; give a generated tree (an earlier main's .generated/agent-monitor)`);
  }
  return { kind, dir: abs, buildNote: "run as it is (--baseline), not rebuilt" };
}
