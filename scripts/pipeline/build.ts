// The pipeline: fetch -> materialize -> patch -> gate -> stamp, then an atomic swap into place.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Patch } from "../../patches/define-patch.ts";
import { UserError } from "../lib/errors.ts";
import { hashFiles, hashManifest, listFiles } from "../lib/hash.ts";
import { ensureNode22, nodeMajor } from "../lib/node22.ts";
import { cacheDir, defaultOutDir, repoRoot } from "../lib/paths.ts";
import { type Pin, readPin, shortSha } from "../lib/pin.ts";
import { describeUpstream, type FetchedUpstream, fetchUpstream, isGitRepo, isUrl } from "./fetch.ts";
import { compareFingerprints, type Fingerprints, type ReviewNote } from "./fingerprint.ts";
import { assertGeneratedTree } from "./gate.ts";
import { MATERIALIZED_ENTRIES, materialize } from "./materialize.ts";
import { type PatchResult, runPatches } from "./patch.ts";
import { patchDiffs, resultsTable } from "./report.ts";
import { type BuildStamp, currentInputs, diffInputs, diffOutputs, readStamp, STAMP_SCHEMA, writeStamp } from "./stamp.ts";

export interface BuildOptions {
  upstream?: string;
  ref?: string;
  allowBranch?: boolean;
  out?: string;
  stamp?: string;
  force?: boolean;
  /** Print each patch's diff (the report file is written either way). */
  diff?: boolean;
  /** Build without patches (the benchmark's baseline). */
  unpatched?: boolean;
  /**
   * The stamp whose fingerprints were last reviewed (default: the committed build-stamp.json for a
   * git upstream; none for a plain directory). null: compare with nothing.
   */
  reviewed?: string | null;
  /** Make "applies — re-review" a build failure (for CI of a bump). */
  strict?: boolean;
  patches: Patch[];
  pin?: Pin;
  log?: (line: string) => void;
}

export interface BuildOutcome {
  status: "built" | "up-to-date";
  outDir: string;
  stampFile: string;
  stamp: BuildStamp;
  results: PatchResult[];
  upstream: FetchedUpstream;
  timings: { step: string; ms: number }[];
  notes: string[];
  /** Anchored upstream code that changed since the reviewed stamp (not a failure unless strict). */
  reviews: ReviewNote[];
}

/** A build failure with everything that went wrong, one line each. */
export class BuildError extends Error {
  constructor(
    readonly step: string,
    readonly problems: string[],
    readonly results: PatchResult[] = [],
    readonly reviews: ReviewNote[] = [],
  ) {
    super(`${step} failed:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "BuildError";
  }
}

const upstreamCache = path.join(cacheDir, "upstream");

/**
 * Where the stamp goes: the committed build-stamp.json describes only the pinned release built
 * into the default folder; any other build (a fixture, another tag, --out) stamps beside its output.
 */
export function defaultStampFile(opts: Pick<BuildOptions, "out" | "upstream" | "ref" | "unpatched">, pin: Pin, isDirectorySource: boolean): string {
  const out = path.resolve(opts.out ?? defaultOutDir);
  const pinned = out === defaultOutDir && !opts.unpatched && !isDirectorySource && (!opts.ref || opts.ref === pin.tag || opts.ref === pin.commit);
  return pinned ? committedStampFile : `${out}.stamp.json`;
}

export function upstreamLabel(u: FetchedUpstream, pin: Pin): string {
  if (u.kind === "git") return pin.repository;
  const rel = path.relative(repoRoot, u.dir);
  return `directory:${rel.startsWith("..") ? path.basename(u.dir) : rel}`;
}

export async function build(opts: BuildOptions): Promise<BuildOutcome> {
  const log = opts.log ?? (() => {});
  const pin = opts.pin ?? readPin();
  const patches = opts.unpatched ? [] : opts.patches;
  const outDir = path.resolve(opts.out ?? defaultOutDir);
  const timings: { step: string; ms: number }[] = [];
  const total = 5;
  let n = 0;
  const step = async <T>(name: string, fn: () => T | Promise<T>, detail: (value: T) => string): Promise<T> => {
    const t0 = performance.now();
    const value = await fn();
    const ms = performance.now() - t0;
    timings.push({ step: name, ms });
    log(`[${++n}/${total}] ${name.padEnd(11)} ${detail(value)}  ${(ms / 1000).toFixed(2)}s`);
    return value;
  };

  const upstream = await step(
    "fetch",
    () => fetchUpstream({ source: opts.upstream, ref: opts.ref, allowBranch: opts.allowBranch, pin, cacheDir: upstreamCache }),
    (u) => `${describeUpstream(u)}${u.cached ? " from cache" : ` from ${u.source}`}`,
  );
  const stampFile = path.resolve(opts.stamp ?? defaultStampFile(opts, pin, upstream.kind === "directory"));
  const node = ensureNode22(log);
  const inputs = currentInputs(patches, nodeMajor(node));

  // Skip when the stamp already describes these inputs and the output is intact.
  const previous = readStamp(stampFile);
  const upstreamFiles = listMaterializable(upstream.dir);
  const contentHash = hashManifest(hashFiles(upstream.dir, upstreamFiles));
  if (!opts.force && previous && previous.upstream.commit === upstream.commit && previous.upstream.contentHash === contentHash && diffInputs(previous, inputs).length === 0 && diffOutputs(previous, outDir).length === 0) {
    log(`up to date: ${path.relative(repoRoot, outDir) || outDir} matches ${path.relative(repoRoot, stampFile)} (use --force to rebuild)`);
    return { status: "up-to-date", outDir, stampFile, stamp: previous, results: [], upstream, timings, notes: [], reviews: [] };
  }

  const parent = path.dirname(outDir);
  mkdirSync(parent, { recursive: true });
  recoverInterruptedSwap(outDir);
  const staging = path.join(parent, `.${path.basename(outDir)}.staging-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  try {
    const mat = await step("materialize", () => materialize(upstream.dir, staging), (m) => `${m.files.length} files (${MATERIALIZED_ENTRIES.join(", ")})`);
    const patched = await step("patch", () => runPatches(staging, patches), (p) => `${patches.length} patches, ${p.patchedFiles.length} files changed, ${p.addedFiles.length} added`);
    const report = patchDiffs(patched.results);
    if (opts.diff && report) log(report);
    const reviews = reviewNotes(opts.reviewed === undefined ? (upstream.kind === "git" ? committedStampFile : null) : opts.reviewed, patched.fingerprints);
    for (const r of reviews) log(`  ${r.line}`);
    if (!patched.ok) {
      const at = ` (upstream: ${describeUpstream(upstream)})`;
      // Causes first; the patches that could not run because of them after, as "skipped (needs …)".
      const failed = patched.results.filter((r) => r.action === "failed").map((r) => r.error! + at);
      const skipped = patched.results.filter((r) => r.action === "skipped").map((r) => r.error!);
      throw new BuildError("patch", [...failed, ...skipped], patched.results, reviews);
    }
    const gate = await step(
      "gate",
      () => assertGeneratedTree({ dir: staging, patches, upstreamFiles: mat.files, patchedFiles: patched.patchedFiles, addedFiles: patched.addedFiles, nodeBinary: node }),
      (g) => `${patches.length} verifies, ${patched.patchedFiles.length + patched.addedFiles.length} syntax checks, file list: ${g.problems.length} problems`,
    );
    if (gate.problems.length > 0) throw new BuildError("gate", gate.problems, patched.results, reviews);
    if (opts.strict && reviews.length > 0) throw new BuildError("review (--strict)", reviews.map((r) => r.line), patched.results, reviews);

    const stamp = await step("stamp", () => {
      const files = listFiles(staging);
      const s: BuildStamp = {
        schema: STAMP_SCHEMA,
        upstream: { repository: upstreamLabel(upstream, pin), tag: upstream.tag, commit: upstream.commit, contentHash: mat.contentHash },
        inputs,
        outputs: hashFiles(staging, files),
        fingerprints: patched.fingerprints,
      };
      swapIntoPlace(staging, outDir);
      writeFileSync(`${outDir}.patches.diff`, report);
      writeStamp(stampFile, s);
      return s;
    }, () => path.relative(repoRoot, stampFile));
    return { status: "built", outDir, stampFile, stamp, results: patched.results, upstream, timings, notes: gate.notes, reviews };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

export const committedStampFile = path.join(repoRoot, "build-stamp.json");

/** The anchored upstream units that differ from the reviewed stamp's (none without one). */
function reviewNotes(reviewedFile: string | null, now: Fingerprints): ReviewNote[] {
  const reviewed = reviewedFile ? readStamp(reviewedFile) : null;
  if (!reviewed?.fingerprints) return [];
  const ref = reviewed.upstream.tag ?? (reviewed.upstream.commit ? shortSha(reviewed.upstream.commit) : reviewed.upstream.repository);
  return compareFingerprints(reviewed.fingerprints, now, ref);
}

/** Files of the upstream tree that materialize would copy (for the skip check, without copying). */
function listMaterializable(dir: string): string[] {
  return listFiles(dir).filter((f) => (MATERIALIZED_ENTRIES as readonly string[]).some((e) => f === e || f.startsWith(`${e}/`)));
}

/** Replace outDir with staging: two renames, with the old tree kept until the new one is in place. */
function swapIntoPlace(staging: string, outDir: string): void {
  const old = `${outDir}.old-${process.pid}`;
  if (existsSync(outDir)) renameSync(outDir, old);
  renameSync(staging, outDir);
  rmSync(old, { recursive: true, force: true });
}

/** A crash between the two renames leaves `<out>.old-<pid>` and no `<out>`: put it back. */
function recoverInterruptedSwap(outDir: string): void {
  if (existsSync(outDir)) return;
  const parent = path.dirname(outDir);
  const prefix = `${path.basename(outDir)}.old-`;
  const leftover = readdirSync(parent).find((d) => d.startsWith(prefix)); // parent exists: build() made it
  if (leftover) renameSync(path.join(parent, leftover), outDir);
}

export interface CheckOutcome {
  ok: boolean;
  problems: string[];
  stampFile: string;
}

/** --check: compare the stamp with the current inputs and the generated files, writing nothing. */
export function check(opts: Pick<BuildOptions, "out" | "stamp" | "upstream" | "ref" | "unpatched" | "patches" | "pin">): CheckOutcome {
  const pin = opts.pin ?? readPin();
  const outDir = path.resolve(opts.out ?? defaultOutDir);
  const source = opts.upstream || process.env.AGENT_MONITOR_UPSTREAM;
  const isDir = !!source && !isUrl(source) && existsSync(source) && !isGitRepo(source);
  const stampFile = path.resolve(opts.stamp ?? defaultStampFile(opts, pin, isDir));
  const stamp = readStamp(stampFile);
  if (!stamp) return { ok: false, problems: [`${path.relative(repoRoot, stampFile)} is missing or unreadable; run the build first`], stampFile };
  const node = ensureNode22();
  const problems = diffInputs(stamp, currentInputs(opts.unpatched ? [] : opts.patches, nodeMajor(node)));
  if (stampFile === committedStampFile && stamp.upstream.commit !== pin.commit) {
    problems.push(`upstream.pin.json pins ${pin.commit}, the stamp was built from ${stamp.upstream.commit}`);
  }
  problems.push(...diffOutputs(stamp, outDir));
  return { ok: problems.length === 0, problems, stampFile };
}

export { resultsTable, UserError };
