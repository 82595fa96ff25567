// Materialize: copy exactly what the runtime needs out of the upstream tree into a staging folder.
import { cpSync, existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { UserError } from "../lib/errors.ts";
import { hashFiles, hashManifest, listFiles } from "../lib/hash.ts";

/**
 * The runtime-relevant part of upstream, plus client/ (the sources the client patches edit and the
 * client step builds into client/dist; only dist stays in a built tree). Everything else (docs, desktop/, mcp/) stays out.
 */
export const MATERIALIZED_ENTRIES = ["server", "scripts", "package.json", "package-lock.json", "LICENSE", "client"] as const;

/** The entries of a build: without client/ for --no-client (the sources-only tree). */
export const materializedEntries = (opts: { client?: boolean } = {}): string[] =>
  MATERIALIZED_ENTRIES.filter((e) => e !== "client" || opts.client !== false);

export interface Materialized {
  dir: string;
  /** Sorted posix relative paths of every copied file. */
  files: string[];
  /** sha256 per copied file, and one hash over names + contents. */
  hashes: Record<string, string>;
  contentHash: string;
}

export function materialize(upstreamDir: string, stagingDir: string, opts: { client?: boolean } = {}): Materialized {
  const entries = materializedEntries(opts);
  const missing = entries.filter((e) => !existsSync(path.join(upstreamDir, e)));
  if (missing.length > 0) {
    const hint = missing.includes("client") ? " (build the server alone with --no-client)" : "";
    throw new UserError(`upstream tree lacks ${missing.join(", ")}; is the source an Agent Monitor checkout? (looked in ${upstreamDir})${hint}`);
  }
  mkdirSync(stagingDir, { recursive: true });
  const builtClient = path.join(upstreamDir, "client", "dist");
  for (const entry of entries) {
    cpSync(path.join(upstreamDir, entry), path.join(stagingDir, entry), {
      recursive: true,
      // A client/dist left in a plain-directory source is an output, never an input.
      filter: (src) => path.basename(src) !== "node_modules" && src !== builtClient,
    });
  }
  const files = listFiles(stagingDir);
  const hashes = hashFiles(stagingDir, files);
  return { dir: stagingDir, files, hashes, contentHash: hashManifest(hashes) };
}

/** Files of an upstream tree that materialize would copy (for the skip check, without copying). */
export function listMaterializable(upstreamDir: string, opts: { client?: boolean } = {}): string[] {
  const entries = materializedEntries(opts);
  const builtClient = "client/dist/";
  return listFiles(upstreamDir).filter((f) => !f.startsWith(builtClient) && entries.some((e) => f === e || f.startsWith(`${e}/`)));
}
