// Step 2: copy exactly what the runtime needs out of the upstream tree into a staging folder.
import { cpSync, existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { UserError } from "../lib/errors.ts";
import { hashFiles, hashManifest, listFiles } from "../lib/hash.ts";

/** The runtime-relevant part of upstream. Everything else (client/, docs, desktop/) stays out. */
export const MATERIALIZED_ENTRIES = ["server", "scripts", "package.json", "package-lock.json", "LICENSE"] as const;

export interface Materialized {
  dir: string;
  /** Sorted posix relative paths of every copied file. */
  files: string[];
  /** sha256 per copied file, and one hash over names + contents. */
  hashes: Record<string, string>;
  contentHash: string;
}

export function materialize(upstreamDir: string, stagingDir: string): Materialized {
  const missing = MATERIALIZED_ENTRIES.filter((e) => !existsSync(path.join(upstreamDir, e)));
  if (missing.length > 0) {
    throw new UserError(`upstream tree lacks ${missing.join(", ")}; is the source an Agent Monitor checkout? (looked in ${upstreamDir})`);
  }
  mkdirSync(stagingDir, { recursive: true });
  for (const entry of MATERIALIZED_ENTRIES) {
    cpSync(path.join(upstreamDir, entry), path.join(stagingDir, entry), {
      recursive: true,
      filter: (src) => path.basename(src) !== "node_modules",
    });
  }
  const files = listFiles(stagingDir);
  const hashes = hashFiles(stagingDir, files);
  return { dir: stagingDir, files, hashes, contentHash: hashManifest(hashes) };
}
