// The patches without loading them: importing patches/index.ts loads ts-morph and the TypeScript
// compiler (over a second), which a no-op build must not pay. Every patch's stamp hash is a pure
// function of the files under patches/ (its module source and the runtime files it adds), so the
// hashes computed the last time the patches were loaded are kept in .cache/patch-hashes/, keyed by
// a hash of every file under patches/. Any edit there changes the key and the patches are loaded.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Patch } from "../../patches/define-patch.ts";
import { hashFiles, hashManifest, listFiles } from "../lib/hash.ts";
import { cacheDir, repoRoot } from "../lib/paths.ts";
import type { StampInputs } from "./stamp.ts";

export interface PatchSet {
  /** Hash of every file under patches/. */
  sourcesHash: string;
  load(): Promise<Patch[]>;
}

const patchesDir = path.join(repoRoot, "patches");
const memoDir = path.join(cacheDir, "patch-hashes");

/** The repository's patches (patches/index.ts), loaded only when needed. */
export function lazyPatches(): PatchSet {
  return {
    sourcesHash: hashManifest(hashFiles(patchesDir, listFiles(patchesDir))),
    load: async () => (await import("../../patches/index.ts")).patches,
  };
}

export const isPatchSet = (p: Patch[] | PatchSet): p is PatchSet => !Array.isArray(p);

/** The stamp hashes recorded for this sources hash, or null (never loaded with these sources). */
export function rememberedHashes(set: PatchSet): StampInputs["patches"] | null {
  const file = path.join(memoDir, `${set.sourcesHash}.json`);
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as StampInputs["patches"];
  } catch {
    return null;
  }
}

export function rememberHashes(set: PatchSet, hashes: StampInputs["patches"]): void {
  mkdirSync(memoDir, { recursive: true });
  const file = path.join(memoDir, `${set.sourcesHash}.json`);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(hashes));
  renameSync(tmp, file); // atomic: a concurrent reader sees all or nothing
}
