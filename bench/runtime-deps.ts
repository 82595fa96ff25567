// Runtime npm dependencies for a monitor tree (the real upstream needs express 4,
// multer, cors, ...; the fixture only needs what the repo root already provides).
//
// Installed once per package-lock.json into .cache/runtime-deps/<sha256-12>/ with
// `npm ci --omit=dev --omit=optional --ignore-scripts` (no better-sqlite3: the server
// falls back to node:sqlite on Node 22). The caller passes the returned directory as
// NODE_PATH to the server process.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { cacheDir, repoRoot } from "../scripts/lib/paths.ts";

const execFileAsync = promisify(execFile);

export const runtimeDepsRoot = path.join(cacheDir, "runtime-deps");
const DONE_MARKER = ".install-complete";

interface PackageJson {
  dependencies?: Record<string, string>;
}

/** Names the tree's package.json lists under "dependencies" (optional ones are never installed). */
export function runtimeDependencyNames(treeDir: string): string[] {
  const pkgPath = path.join(treeDir, "package.json");
  if (!existsSync(pkgPath)) return [];
  const pkg = JSON.parse(readFileSync(pkgPath, "utf8")) as PackageJson;
  return Object.keys(pkg.dependencies ?? {});
}

/** True when every runtime dependency already resolves from the repository root's node_modules. */
export function rootProvidesAll(names: readonly string[]): boolean {
  return names.every((name) => existsSync(path.join(repoRoot, "node_modules", name, "package.json")));
}

/** 12 hex chars of the sha256 of the tree's package-lock.json. */
export function lockHash(treeDir: string): string {
  return createHash("sha256").update(readFileSync(path.join(treeDir, "package-lock.json"))).digest("hex").slice(0, 12);
}

/**
 * Make sure the tree's runtime dependencies are installed and return the directory to put in
 * NODE_PATH (`.cache/runtime-deps/<hash>/node_modules`), or null when the repository root already
 * provides every dependency (e.g. the fixture tree) so nothing needs installing.
 * A tree outside the repository cannot reach the root's node_modules by walking up, so for
 * such a tree the root's node_modules directory is returned instead of null.
 */
export async function ensureRuntimeDeps(
  treeDir: string,
  log: (line: string) => void = () => {},
  opts: { dev?: boolean } = {},
): Promise<string | null> {
  // dev: also upstream's devDependencies (its own test suite needs them); always installed.
  const dev = opts.dev ?? false;
  const names = runtimeDependencyNames(treeDir);
  if (!dev && rootProvidesAll(names)) {
    const rel = path.relative(repoRoot, path.resolve(treeDir));
    const insideRepo = rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
    return insideRepo ? null : path.join(repoRoot, "node_modules");
  }
  const lockPath = path.join(treeDir, "package-lock.json");
  if (!existsSync(lockPath)) {
    throw new Error(
      `${treeDir} needs runtime dependencies the repository root lacks (${names.join(", ")}) but has no package-lock.json to install them from`,
    );
  }
  const hash = lockHash(treeDir) + (dev ? "-dev" : "");
  const finalDir = path.join(runtimeDepsRoot, hash);
  const nodeModules = path.join(finalDir, "node_modules");
  if (existsSync(path.join(finalDir, DONE_MARKER))) return nodeModules;

  // Install into a private staging dir, then rename: two concurrent callers (bench + vitest)
  // never see a half-installed tree; the loser of the rename race just discards its copy.
  mkdirSync(runtimeDepsRoot, { recursive: true });
  const staging = path.join(runtimeDepsRoot, `.staging-${hash}-${process.pid}-${Date.now()}`);
  mkdirSync(staging, { recursive: true });
  copyFileSync(path.join(treeDir, "package.json"), path.join(staging, "package.json"));
  copyFileSync(lockPath, path.join(staging, "package-lock.json"));
  log(`installing runtime dependencies for lock ${hash} (npm ci, one time)`);
  try {
    await execFileAsync(
      "npm",
      ["ci", ...(dev ? [] : ["--omit=dev"]), "--omit=optional", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
      { cwd: staging, maxBuffer: 16 * 1024 * 1024 },
    );
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    const e = err as { stderr?: string; message: string };
    throw new Error(`npm ci for runtime deps failed: ${(e.stderr || e.message).trim().split("\n").slice(-5).join(" | ")}`);
  }
  writeFileSync(path.join(staging, DONE_MARKER), `${new Date().toISOString()}\n`);
  try {
    renameSync(staging, finalDir);
  } catch {
    // Someone else finished first (or a stale incomplete dir is in the way).
    if (!existsSync(path.join(finalDir, DONE_MARKER))) {
      rmSync(finalDir, { recursive: true, force: true });
      renameSync(staging, finalDir);
    } else {
      rmSync(staging, { recursive: true, force: true });
    }
  }
  return nodeModules;
}
