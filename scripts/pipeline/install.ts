// Install: upstream's production npm dependencies, installed the way the desktop app runs
// them: `npm ci --omit=dev --omit=optional --ignore-scripts` from upstream's own lockfile (no
// better-sqlite3: the server falls back to node:sqlite through compat-sqlite on Node 22).
//
// Installed once per package-lock.json into .cache/runtime-deps/<sha256-12>/, then copied into
// `<out>/node_modules`. The shipped tree is hashed (names and contents) for the stamp; per-file
// hashes, sizes and mtimes go to `<out>.manifest.json` so --check can name the package edited by
// hand and the no-op check can stat instead of hash.
//
// ensureRuntimeDeps() serves trees that carry no node_modules of their own (an upstream checkout,
// a --no-install build): it returns the cached directory for NODE_PATH.
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import path from "node:path";
import { hashManifest, sha256 } from "../lib/hash.ts";
import { cacheDir, repoRoot } from "../lib/paths.ts";
import { isCacheEntry, publishCacheDir } from "../lib/cache-dir.ts";
import { pathWithNodeFirst, runLogged } from "./run-logged.ts";
import type { ManifestRecord } from "./stamp.ts";

export const runtimeDepsRoot = path.join(cacheDir, "runtime-deps");
const DONE_MARKER = ".install-complete";
export const NPM_CI_ARGS = ["ci", "--omit=dev", "--omit=optional", "--ignore-scripts", "--no-audit", "--no-fund"];

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
  return sha256(readFileSync(path.join(treeDir, "package-lock.json"))).slice(0, 12);
}

export interface InstallOptions {
  log?: (line: string) => void;
  /** Also devDependencies (upstream's own test suite needs them). */
  dev?: boolean;
  /** Node binary put first on PATH for npm (default: the caller's PATH as is). */
  nodeBinary?: string;
  logDir?: string;
}

/**
 * The cached install for a tree's lockfile (`.cache/runtime-deps/<hash>/node_modules`), running
 * npm ci once. Concurrent callers (bench + vitest workers) install into private staging dirs and
 * rename; the loser of the race discards its copy.
 */
export async function cachedInstall(treeDir: string, opts: InstallOptions = {}): Promise<{ nodeModules: string; ranNpm: boolean }> {
  const dev = opts.dev ?? false;
  const lockPath = path.join(treeDir, "package-lock.json");
  if (!existsSync(lockPath)) {
    throw new Error(`${treeDir} has no package-lock.json to install its runtime dependencies from (${runtimeDependencyNames(treeDir).join(", ")})`);
  }
  const hash = lockHash(treeDir) + (dev ? "-dev" : "");
  const finalDir = path.join(runtimeDepsRoot, hash);
  const nodeModules = path.join(finalDir, "node_modules");
  if (isCacheEntry(finalDir, DONE_MARKER)) return { nodeModules, ranNpm: false };

  mkdirSync(runtimeDepsRoot, { recursive: true });
  const staging = path.join(runtimeDepsRoot, `.staging-${hash}-${process.pid}-${Date.now()}`);
  mkdirSync(staging, { recursive: true });
  cpSync(path.join(treeDir, "package.json"), path.join(staging, "package.json"));
  cpSync(lockPath, path.join(staging, "package-lock.json"));
  try {
    await runLogged({
      name: dev ? "runtime-npm-ci-dev" : "runtime-npm-ci",
      title: `runtime deps: npm ci (lock ${hash}, one time)`,
      cmd: "npm",
      args: dev ? NPM_CI_ARGS.filter((a) => a !== "--omit=dev") : NPM_CI_ARGS,
      cwd: staging,
      env: opts.nodeBinary ? { ...process.env, PATH: pathWithNodeFirst(opts.nodeBinary) } : process.env,
      logDir: opts.logDir,
      log: opts.log,
    });
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
  publishCacheDir(staging, finalDir, DONE_MARKER);
  return { nodeModules, ranNpm: true };
}

/**
 * NODE_PATH for a tree without node_modules of its own: the cached install of its lockfile, or
 * null when the repository root already provides every dependency and the tree is inside the
 * repository (resolution walks up to the root's node_modules); the root's node_modules for a tree
 * outside it. A tree that has its own node_modules (a default build) needs none: returns that.
 */
export async function ensureRuntimeDeps(treeDir: string, log: (line: string) => void = () => {}, opts: { dev?: boolean } = {}): Promise<string | null> {
  const dev = opts.dev ?? false;
  const own = path.join(treeDir, "node_modules");
  if (!dev && existsSync(own)) return own;
  if (!dev && rootProvidesAll(runtimeDependencyNames(treeDir))) {
    const rel = path.relative(repoRoot, path.resolve(treeDir));
    const insideRepo = rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
    return insideRepo ? null : path.join(repoRoot, "node_modules");
  }
  return (await cachedInstall(treeDir, { log, dev })).nodeModules;
}

// ── the installed tree in the output ──────────────────────────────────────

/** Per file below node_modules/: [sha256, size, mtimeMs]. Symlinks hash their target text. */
export type TreeManifest = Record<string, [string, number, number]>;

export interface Installed {
  /** One hash over names and contents of every file (for the committed stamp). */
  hash: string;
  packages: number;
  files: number;
  manifest: TreeManifest;
  ranNpm: boolean;
}

/** Every file and symlink below dir (nested node_modules included), sorted posix relative paths. */
function walkAll(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(child);
      else if (e.isFile() || e.isSymbolicLink()) out.push(child);
    }
  };
  walk("");
  return out.sort();
}

function entryHash(file: string): string {
  const st = lstatSync(file);
  return st.isSymbolicLink() ? sha256(`symlink:${readlinkSync(file)}`) : sha256(readFileSync(file));
}

/** Hash every entry of a node_modules directory, with sizes and mtimes for cheap re-checks. */
export function manifestOf(nodeModules: string): TreeManifest {
  const m: TreeManifest = {};
  for (const rel of walkAll(nodeModules)) {
    const abs = path.join(nodeModules, rel);
    const st = lstatSync(abs);
    m[rel] = [entryHash(abs), st.size, st.mtimeMs];
  }
  return m;
}

export const treeHash = (m: TreeManifest): string => hashManifest(Object.fromEntries(Object.entries(m).map(([f, [h]]) => [f, h])));

/** `express`, `@scope/pkg`, `a/node_modules/b` for a path below node_modules/ (npm's nesting). */
export function packageOf(rel: string): string {
  const parts = rel.split("/");
  let i = parts.lastIndexOf("node_modules");
  const start = i + 1;
  const len = parts[start]?.startsWith("@") ? 2 : 1;
  if (start + len >= parts.length) return parts.slice(0, start + len).join("/") || rel; // a top-level file like .package-lock.json
  i = start + len;
  return parts.slice(0, i).join("/");
}

const countPackages = (m: TreeManifest) => Object.keys(m).filter((f) => /(^|\/)package\.json$/.test(f) && packageOf(f) === f.slice(0, -"/package.json".length)).length;

/** Install the tree's production deps (cached by lockfile) into `<stagingDir>/node_modules`. */
export async function installRuntimeDeps(stagingDir: string, opts: InstallOptions & { nodeBinary: string }): Promise<Installed> {
  const { nodeModules, ranNpm } = await cachedInstall(stagingDir, opts);
  const target = path.join(stagingDir, "node_modules");
  cpSync(nodeModules, target, { recursive: true, verbatimSymlinks: true });
  const manifest = manifestOf(target);
  return { hash: treeHash(manifest), packages: countPackages(manifest), files: Object.keys(manifest).length, manifest, ranNpm };
}

/**
 * Packages under `<outDir>/node_modules` that differ from the manifest (edited, added, removed),
 * and whether the whole tree still hashes to `expectedHash`. `full` hashes every file (--check);
 * otherwise only files whose size or mtime changed are re-hashed (the no-op check).
 */
export function diffNodeModules(outDir: string, record: ManifestRecord<TreeManifest> | null, expectedHash: string, full: boolean): string[] {
  const manifest = record?.nodeModules ?? null;
  const dir = path.join(outDir, "node_modules");
  if (!existsSync(dir)) return ["node_modules/ is missing"];
  if (!manifest) {
    if (!full) return ["node_modules/ has no manifest beside the output to compare with"];
    const now = manifestOf(dir);
    return treeHash(now) === expectedHash ? [] : ["node_modules/ differs from the stamp (no manifest beside the output to name the package; rebuild)"];
  }
  // The no-op check trusts the tree hash the build recorded in its own manifest (hashing 10,000
  // entries again costs more than the rest of the check); --check recomputes it.
  if ((!full && record?.tree ? record.tree : treeHash(manifest)) !== expectedHash) return ["node_modules/: the manifest beside the output does not match the stamp"];
  const changed = new Map<string, Set<string>>();
  const note = (rel: string, what: string) => {
    const pkg = packageOf(rel);
    if (!changed.has(pkg)) changed.set(pkg, new Set());
    changed.get(pkg)!.add(what);
  };
  const present = walkAll(dir);
  const seen = new Set(present);
  for (const rel of present) {
    const want = manifest[rel];
    if (!want) {
      note(rel, `${rel.slice(packageOf(rel).length + 1) || rel} added`);
      continue;
    }
    const abs = path.join(dir, rel);
    if (!full) {
      const st = lstatSync(abs);
      if (st.size === want[1] && st.mtimeMs === want[2]) continue;
    }
    if (entryHash(abs) !== want[0]) note(rel, `${rel.slice(packageOf(rel).length + 1) || rel} edited`);
  }
  for (const rel of Object.keys(manifest)) if (!seen.has(rel)) note(rel, `${rel.slice(packageOf(rel).length + 1) || rel} missing`);
  return [...changed].map(([pkg, what]) => {
    const list = [...what];
    return `node_modules/${pkg} was changed by hand (${list.slice(0, 3).join(", ")}${list.length > 3 ? `, +${list.length - 3} more` : ""})`;
  });
}
