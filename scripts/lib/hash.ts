import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

export const sha256 = (data: string | Buffer): string => createHash("sha256").update(data).digest("hex");

/** Every file below `root` as sorted posix relative paths (symlinks and node_modules skipped). */
export function listFiles(root: string, skip: (rel: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.name === "node_modules" || skip(child)) continue;
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile()) out.push(child);
    }
  };
  walk("");
  return out.sort();
}

/** sha256 of each file, keyed by posix relative path. */
export function hashFiles(root: string, files: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of files) out[f] = sha256(readFileSync(path.join(root, f)));
  return out;
}

/** One hash over names and contents (a renamed file changes it, unlike hashing bytes alone). */
export function hashManifest(hashes: Record<string, string>): string {
  return sha256(Object.keys(hashes).sort().map((f) => `${f}\0${hashes[f]}\n`).join(""));
}
