// The upstream runtime needs Node >= 22 (node:sqlite). The toolchain itself runs on the
// machine's Node 20 (better-sqlite3 12 is compiled for it), so Node 22 lives in its own
// git-ignored prefix and is always called by path, never put on PATH or in node_modules/.bin.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "./paths.ts";

export const NODE22_SPEC = "node@22";
export const node22Prefix = path.join(repoRoot, ".cache", "node22");
const bundledBinary = path.join(node22Prefix, "node_modules", "node", "bin", "node");

/** Path of a Node 22+ binary: $AGENT_MONITOR_NODE, else the project's cached install. */
export function node22Path(): string | null {
  const fromEnv = process.env.AGENT_MONITOR_NODE;
  if (fromEnv) return fromEnv;
  return existsSync(bundledBinary) ? bundledBinary : null;
}

/**
 * Returns a Node 22 binary, installing the npm package node@22 into .cache/node22 once. Safe when
 * several processes ask at once (the test workers of a fresh clone): each installs into a prefix of
 * its own and renames it into place; the first rename wins and the others use its binary.
 */
export function ensureNode22(log: (line: string) => void = () => {}): string {
  const found = node22Path();
  if (found) {
    assertMajorAtLeast(found, 22);
    return found;
  }
  log(`installing ${NODE22_SPEC} into .cache/node22 (one time)`);
  const tmp = `${node22Prefix}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    execFileSync("npm", ["install", "--no-save", "--no-audit", "--no-fund", "--prefix", tmp, NODE22_SPEC], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (existsSync(bundledBinary)) return ensureNode22(log); // another process installed it meanwhile: checked like any found binary
    const stderr = String((err as { stderr?: Buffer }).stderr ?? "").trim().split("\n").filter(Boolean).pop();
    throw new Error(
      `could not install ${NODE22_SPEC} into .cache/node22 (${stderr ?? (err as Error).message.split("\n")[0]}); ` +
        `install Node 22 yourself and set AGENT_MONITOR_NODE=/path/to/node`,
    );
  }
  // The rename fails when another process put its install in place first (then its binary is
  // there) or a prefix is left by an interrupted install (no binary: it makes way).
  const place = () => {
    try {
      renameSync(tmp, node22Prefix);
      return true;
    } catch {
      return false;
    }
  };
  if (!place() && !existsSync(bundledBinary)) {
    rmSync(node22Prefix, { recursive: true, force: true });
    place();
  }
  rmSync(tmp, { recursive: true, force: true });
  if (!existsSync(bundledBinary)) throw new Error(`${NODE22_SPEC} installed but ${bundledBinary} is missing`);
  assertMajorAtLeast(bundledBinary, 22);
  return bundledBinary;
}

const versions = new Map<string, string>();
const versionMemo = path.join(repoRoot, ".cache", "node-versions.json");

/**
 * Full version of a Node binary, e.g. "22.23.3": asked once per binary per process, and kept in
 * .cache/node-versions.json by the binary's path, size and mtime (starting the binary costs a
 * no-op build more than everything else it checks but node_modules).
 */
export function nodeVersion(binary: string): string {
  let v = versions.get(binary);
  if (v !== undefined) return v;
  const st = statSync(binary, { throwIfNoEntry: false });
  const key = st ? `${path.resolve(binary)}\0${st.size}\0${st.mtimeMs}` : null;
  let memo: Record<string, string> = {};
  try {
    memo = JSON.parse(readFileSync(versionMemo, "utf8")) as Record<string, string>;
  } catch {
    // no memo yet
  }
  v = key ? memo[key] : undefined;
  if (v === undefined) {
    v = execFileSync(binary, ["-p", "process.versions.node"], { encoding: "utf8" }).trim();
    if (key) {
      mkdirSync(path.dirname(versionMemo), { recursive: true });
      const tmp = `${versionMemo}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify({ ...memo, [key]: v }));
      renameSync(tmp, versionMemo); // atomic: a concurrent reader sees all or nothing
    }
  }
  versions.set(binary, v);
  return v;
}

/** Major version of a Node binary. */
export const nodeMajor = (binary: string): number => Number(nodeVersion(binary).split(".")[0]);

function assertMajorAtLeast(binary: string, major: number): void {
  const got = nodeMajor(binary);
  if (got < major) {
    throw new Error(`${binary} is Node ${got}; the monitor needs Node >= ${major} (set AGENT_MONITOR_NODE to a Node ${major}+ binary)`);
  }
}
