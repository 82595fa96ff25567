// A finished folder enters a shared cache (.cache/client-dist, .cache/runtime-deps) in one rename,
// marked complete first, so concurrent builds (bench + vitest workers) never see half of one.
import { existsSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

/** Is `dir` a complete cache entry (published by publishCacheDir with `marker`)? */
export const isCacheEntry = (dir: string, marker: string): boolean => existsSync(path.join(dir, marker));

/**
 * Move the private folder `staging` to `finalDir` as a complete entry. When another build published
 * the same entry first, keep theirs and discard ours; a stale incomplete `finalDir` is replaced.
 */
export function publishCacheDir(staging: string, finalDir: string, marker: string): void {
  writeFileSync(path.join(staging, marker), `${new Date().toISOString()}\n`);
  try {
    renameSync(staging, finalDir);
  } catch {
    if (isCacheEntry(finalDir, marker)) {
      rmSync(staging, { recursive: true, force: true });
    } else {
      rmSync(finalDir, { recursive: true, force: true });
      renameSync(staging, finalDir);
    }
  }
}
