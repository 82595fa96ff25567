// The upstream's npm dependencies, installed once per package-lock.json into .cache/upstream-deps/<hash>.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import { sha256 } from "./hash.ts";
import { cacheDir } from "./paths.ts";

/**
 * Returns a node_modules folder with the tree's dependencies (dev included, optional omitted, so
 * better-sqlite3 is absent and the monitor runs on node:sqlite like the desktop app). No scripts run.
 */
export function ensureUpstreamDeps(treeDir: string, opts: { dev?: boolean } = {}): string {
  const lock = path.join(treeDir, "package-lock.json");
  const key = sha256(readFileSync(lock)).slice(0, 12) + (opts.dev === false ? "-prod" : "");
  const dir = path.join(cacheDir, "upstream-deps", key);
  const modules = path.join(dir, "node_modules");
  if (existsSync(modules)) return modules;
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  copyFileSync(path.join(treeDir, "package.json"), path.join(tmp, "package.json"));
  copyFileSync(lock, path.join(tmp, "package-lock.json"));
  const args = ["ci", "--ignore-scripts", "--omit=optional", "--no-audit", "--no-fund", ...(opts.dev === false ? ["--omit=dev"] : [])];
  execFileSync("npm", args, { cwd: tmp, stdio: ["ignore", "ignore", "pipe"] });
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return modules;
}
