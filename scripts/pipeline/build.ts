// The pipeline: fetch -> materialize -> patch -> gate -> stamp, then an atomic swap into place.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Patch } from "../../patches/define-patch.ts";
import { UserError } from "../lib/errors.ts";
import { hashFiles, hashManifest, listFiles } from "../lib/hash.ts";
import { ensureNode22, nodeMajor, nodeVersion } from "../lib/node22.ts";
import { cacheDir, defaultOutDir, repoRoot } from "../lib/paths.ts";
import { type Pin, readPin, shortSha } from "../lib/pin.ts";
import { describeUpstream, type FetchedUpstream, fetchUpstream, isGitRepo, isUrl } from "./fetch.ts";
import type { Fingerprints, ReviewNote } from "./fingerprint.ts";
import { buildClient, type ClientBuild, clientInputHash, CLIENT_DIR } from "./client.ts";
import { diffNodeModules, type Installed, installRuntimeDeps, lockHash, type TreeManifest } from "./install.ts";
import { listMaterializable, materialize, materializedEntries } from "./materialize.ts";
import type { PatchResult } from "./patch.ts";
import { isPatchSet, type PatchSet, rememberedHashes, rememberHashes } from "./patch-set.ts";
import { type BuildStamp, currentInputs, diffInputs, diffOutputs, diffShape, manifestFile, readManifest, readStamp, STAMP_SCHEMA, writeManifest, writeStamp } from "./stamp.ts";

export interface BuildOptions {
  upstream?: string;
  ref?: string;
  allowBranch?: boolean;
  out?: string;
  stamp?: string;
  force?: boolean;
  /** Print each patch's diff (the report file is written either way). */
  diff?: boolean;
  /** Write the review report <out>.patches.diff (default true; drift, which only needs the verdicts, skips it). */
  report?: boolean;
  /** Build without patches (the benchmark's baseline). */
  unpatched?: boolean;
  /**
   * The stamp whose fingerprints were last reviewed (default: the committed build-stamp.json for a
   * git upstream; none for a plain directory). null: compare with nothing.
   */
  reviewed?: string | null;
  /** Make "applies — re-review" a build failure (for CI of a bump). */
  strict?: boolean;
  /** Build upstream's client into client/dist (default true; false: the sources-only tree). */
  client?: boolean;
  /** Install the runtime npm deps into <out>/node_modules (default true). */
  install?: boolean;
  /** Where long steps keep their tool's output (default .cache/logs). */
  logDir?: string;
  /** The patches, or a PatchSet that loads them (and the TypeScript compiler) only when the build is not a no-op. */
  patches: Patch[] | PatchSet;
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
  /** What the client step did (absent when skipped or --no-client). */
  client?: ClientBuild;
  /** What the install step did (absent when skipped or --no-install). */
  installed?: Omit<Installed, "manifest">;
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
  let loaded: Patch[] | null = opts.unpatched ? [] : isPatchSet(opts.patches) ? null : opts.patches;
  const loadPatches = async (): Promise<Patch[]> => (loaded ??= await (opts.patches as PatchSet).load());
  const outDir = path.resolve(opts.out ?? defaultOutDir);
  const withClient = opts.client !== false;
  const withInstall = opts.install !== false;
  const timings: { step: string; ms: number }[] = [];
  const total = 5 + (withClient ? 1 : 0) + (withInstall ? 1 : 0);
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
  const major = nodeMajor(node);
  const remembered = loaded ? null : rememberedHashes(opts.patches as PatchSet);
  let inputs = remembered ? { ...currentInputs([], major), patches: remembered } : currentInputs(await loadPatches(), major);
  if (!remembered && isPatchSet(opts.patches) && !opts.unpatched) rememberHashes(opts.patches, inputs.patches);

  // Skip when the stamp already describes these inputs and the output is intact.
  const previous = readStamp(stampFile);
  const upstreamFiles = listMaterializable(upstream.dir, { client: withClient });
  const upstreamHashes = hashFiles(upstream.dir, upstreamFiles);
  const contentHash = hashManifest(upstreamHashes);
  const shape = { client: withClient ? clientInputHash(upstreamHashes, nodeVersion(node)) : null, install: withInstall };
  const unchanged = () =>
    previous!.upstream.commit === upstream.commit &&
    previous!.upstream.contentHash === contentHash &&
    diffInputs(previous!, inputs).length === 0 &&
    diffShape(previous!, shape).length === 0 &&
    diffOutputs(previous!, outDir).length === 0 &&
    (!previous!.runtimeDeps || diffNodeModules(outDir, readManifest<TreeManifest>(outDir), previous!.runtimeDeps.tree, false).length === 0);
  if (!opts.force && previous && unchanged()) {
    log(`up to date: ${path.relative(repoRoot, outDir) || outDir} matches ${path.relative(repoRoot, stampFile)} (use --force to rebuild)`);
    return { status: "up-to-date", outDir, stampFile, stamp: previous, results: [], upstream, timings, notes: [], reviews: [] };
  }

  // Not a no-op: now load the patch engine (ts-morph, the TypeScript compiler) and the patches.
  const patches = await loadPatches();
  inputs = currentInputs(patches, major);
  const [{ runPatches }, { assertGeneratedTree }, { patchDiffs }] = await Promise.all([import("./patch.ts"), import("./gate.ts"), import("./report.ts")]);
  const parent = path.dirname(outDir);
  mkdirSync(parent, { recursive: true });
  recoverInterruptedSwap(outDir);
  const staging = path.join(parent, `.${path.basename(outDir)}.staging-${process.pid}`);
  removeTree(staging);
  try {
    const mat = await step("materialize", () => materialize(upstream.dir, staging, { client: withClient }), (m) => `${m.files.length} files (${materializedEntries({ client: withClient }).join(", ")})`);
    const patched = await step("patch", () => runPatches(staging, patches), (p) => `${patches.length} patches, ${p.patchedFiles.length} files changed, ${p.addedFiles.length} added`);
    const report = opts.report === false ? "" : patchDiffs(patched.results);
    if (opts.diff && report) log(report);
    const reviews = await reviewNotes(opts.reviewed === undefined ? (upstream.kind === "git" ? committedStampFile : null) : opts.reviewed, patched.fingerprints);
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
    // minimal: engine helper replaces this. Client patches edit client/src, so the client step runs
    // after patch and gate, on the patched sources (its cache key hashes them, not upstream's).
    let client: ClientBuild | undefined;
    if (withClient) {
      const clientHashes = hashFiles(staging, listFiles(staging).filter((f) => f.startsWith(`${CLIENT_DIR}/`) && !f.endsWith(".map")));
      for (const f of ["package.json"]) clientHashes[f] = mat.hashes[f];
      client = await step(
        "client",
        () => buildClient(staging, { hashes: clientHashes, nodeBinary: node, nodeVersion: nodeVersion(node), log, logDir: opts.logDir }),
        (c) => `${c.files.length} files in client/dist${c.cached ? ` from cache (${c.inputHash})` : ` built (${c.inputHash})`}`,
      );
    }
    if (opts.strict && reviews.length > 0) throw new BuildError("review (--strict)", reviews.map((r) => r.line), patched.results, reviews);
    let installed: Installed | undefined;
    if (withInstall) {
      installed = await step(
        "install",
        () => installRuntimeDeps(staging, { nodeBinary: node, log, logDir: opts.logDir }),
        (i) => `${i.packages} packages, ${i.files} files into node_modules/ (npm ci --omit=dev --omit=optional --ignore-scripts${i.ranNpm ? "" : ", from cache"})`,
      );
    }

    const stamp = await step("stamp", () => {
      const files = listFiles(staging);
      const s: BuildStamp = {
        schema: STAMP_SCHEMA,
        upstream: { repository: upstreamLabel(upstream, pin), tag: upstream.tag, commit: upstream.commit, contentHash: mat.contentHash },
        inputs,
        outputs: hashFiles(staging, files),
        fingerprints: patched.fingerprints,
        ...(client ? { client: { inputHash: client.inputHash } } : {}),
        ...(installed ? { runtimeDeps: { lockfile: lockHash(staging), tree: installed.hash, packages: installed.packages, files: installed.files } } : {}),
      };
      swapIntoPlace(staging, outDir);
      if (opts.report !== false) writeFileSync(`${outDir}.patches.diff`, report);
      if (installed) writeManifest(outDir, installed.manifest);
      else rmSync(manifestFile(outDir), { force: true });
      writeStamp(stampFile, s);
      return s;
    }, () => path.relative(repoRoot, stampFile));
    const installedSummary = installed && { hash: installed.hash, packages: installed.packages, files: installed.files, ranNpm: installed.ranNpm };
    return { status: "built", outDir, stampFile, stamp, results: patched.results, upstream, timings, notes: gate.notes, client, installed: installedSummary, reviews };
  } finally {
    removeTree(staging);
  }
}

export const committedStampFile = path.join(repoRoot, "build-stamp.json");

/** The anchored upstream units that differ from the reviewed stamp's (none without one). */
async function reviewNotes(reviewedFile: string | null, now: Fingerprints): Promise<ReviewNote[]> {
  const reviewed = reviewedFile ? readStamp(reviewedFile) : null;
  if (!reviewed?.fingerprints) return [];
  const ref = reviewed.upstream.tag ?? (reviewed.upstream.commit ? shortSha(reviewed.upstream.commit) : reviewed.upstream.repository);
  const { compareFingerprints } = await import("./fingerprint.ts"); // ts-morph: only when the build does work
  return compareFingerprints(reviewed.fingerprints, now, ref);
}

/** Replace outDir with staging: two renames, with the old tree kept until the new one is in place. */
function swapIntoPlace(staging: string, outDir: string): void {
  const old = `${outDir}.old-${process.pid}`;
  if (existsSync(outDir)) renameSync(outDir, old);
  renameSync(staging, outDir);
  removeTree(old);
}

/**
 * rm -rf: a tree with node_modules/ holds ~10,000 files, which fs.rmSync removes several times
 * slower than rm(1) (16 s against 2 s measured here under load); rmSync where there is no rm.
 */
function removeTree(dir: string): void {
  if (!existsSync(dir)) return;
  if (process.platform !== "win32" && spawnSync("rm", ["-rf", dir], { stdio: "ignore" }).status === 0) return;
  rmSync(dir, { recursive: true, force: true });
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
export function check(opts: Pick<BuildOptions, "out" | "stamp" | "upstream" | "ref" | "unpatched" | "pin"> & { patches: Patch[] }): CheckOutcome {
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
  if (stamp.runtimeDeps) problems.push(...diffNodeModules(outDir, readManifest<TreeManifest>(outDir), stamp.runtimeDeps.tree, true));
  return { ok: problems.length === 0, problems, stampFile };
}

export { UserError };
