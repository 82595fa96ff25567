import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
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

/**
 * hashFiles for the no-op check, with git's index idea: a file whose size, mtime and inode are those
 * recorded in `cacheFile` with its hash is not read again. A file changed within 2 s before the record
 * was written is hashed anyway ("racily clean": a same-size edit in the same mtime tick would look
 * unchanged). The record is rewritten (atomically) only when a file was hashed. `npm run build -- --check`
 * and every build that writes use hashFiles, never this.
 */
export function hashFilesByStat(root: string, files: string[], cacheFile: string): Record<string, string> {
  type Entry = [size: number, mtimeMs: number, ino: number, hash: string];
  let cache: { written: number; files: Record<string, Entry> } = { written: 0, files: {} };
  try {
    cache = JSON.parse(readFileSync(cacheFile, "utf8"));
  } catch {
    // no record yet (or unreadable): hash everything
  }
  const out: Record<string, string> = {};
  const next: Record<string, Entry> = {};
  let hashed = 0;
  for (const f of files) {
    const abs = path.join(root, f);
    const st = statSync(abs);
    const e = cache.files[f];
    if (e && e[0] === st.size && e[1] === st.mtimeMs && e[2] === st.ino && st.mtimeMs < cache.written - 2000) out[f] = e[3];
    else {
      out[f] = sha256(readFileSync(abs));
      hashed++;
    }
    next[f] = [st.size, st.mtimeMs, st.ino, out[f]];
  }
  if (hashed > 0 || Object.keys(cache.files).length !== files.length) {
    mkdirSync(path.dirname(cacheFile), { recursive: true });
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ written: Date.now(), files: next }));
    renameSync(tmp, cacheFile);
  }
  return out;
}

/** One hash over names and contents (a renamed file changes it, unlike hashing bytes alone). */
export function hashManifest(hashes: Record<string, string>): string {
  return sha256(Object.keys(hashes).sort().map((f) => `${f}\0${hashes[f]}\n`).join(""));
}
