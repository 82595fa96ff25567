// The build pipeline: BUILD_STEPS declares the steps (fetch, materialize, patch, gate, client,
// install, stamp), build() runs the ones that apply to its options, numbered and timed, and then
// publishes the staged tree (swap into place, review diff, manifest, stamp file).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { isClientPatch, type Patch, withoutClientTargets } from "../../patches/define-patch.ts";
import { type Problem, renderProblem } from "../../patches/lib/errors.ts";
import { UserError } from "../lib/errors.ts";
import { hashFiles, hashFilesByStat, hashManifest, listFiles, sha256 } from "../lib/hash.ts";
import { ensureNode22, nodeMajor, nodeVersion } from "../lib/node22.ts";
import { cacheDir, defaultOutDir, repoRoot } from "../lib/paths.ts";
import { type Pin, readPin, shortSha } from "../lib/pin.ts";
import { describeUpstream, type FetchedUpstream, fetchUpstream, sourceKind } from "./fetch.ts";
import type { Fingerprints, ReviewNote } from "./fingerprint.ts";
import { buildClient, type ClientBuild, CLIENT_DIR } from "./client.ts";
import type { GateOutcome } from "./gate.ts";
import { diffNodeModules, type Installed, installRuntimeDeps, lockHash, type TreeManifest } from "./install.ts";
import { listMaterializable, type Materialized, materialize, materializedEntries } from "./materialize.ts";
import type { PatchEngine, PatchResult, PatchRunOutcome } from "./patch.ts";
import { isPatchSet, type PatchSet, rememberedHashes, rememberHashes } from "./patch-set.ts";
import { type BuildStamp, currentInputs, diffInputs, diffOutputs, diffShape, manifestFile, readManifest, readStamp, STAMP_SCHEMA, type StampInputs, writeManifest, writeStamp } from "./stamp.ts";

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
  /**
   * What to do with upstream's client/ (default "build"; true means "build"):
   * - "build": materialize its sources, apply the client patches, build client/dist from the
   *   patched sources and ship only client/dist (and the files the server reads, SERVER_READS);
   * - "sources": materialize, patch and gate the client sources but build nothing; the tree keeps
   *   the patched sources (drift: client patches are applied, gated and fingerprinted per release);
   * - false (--no-client): no client/ at all; client patches are left out.
   */
  client?: ClientMode | boolean;
  /** Install the runtime npm deps into <out>/node_modules (default true). */
  install?: boolean;
  /** Where long steps keep their tool's output (default .cache/logs). */
  logDir?: string;
  /** The patches, or a PatchSet that loads them (and the TypeScript compiler) only when the build is not a no-op. */
  patches: Patch[] | PatchSet;
  pin?: Pin;
  log?: (line: string) => void;
  /** Progress as typed events; default: each rendered by renderEvent to `log`. */
  onEvent?: (event: BuildEvent) => void;
  /** The patch engine to run on (drift shares one across its refs); default: one of its own, disposed after the build. */
  engine?: PatchEngine;
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

/** A build failure with everything that went wrong, as data (`lines`: one rendered line each). */
export class BuildError extends Error {
  constructor(
    readonly step: string,
    readonly problems: Problem[],
    readonly results: PatchResult[] = [],
    readonly reviews: ReviewNote[] = [],
  ) {
    super(`${step} failed:\n${problems.map((p) => `  - ${renderProblem(p)}`).join("\n")}`);
    this.name = "BuildError";
  }

  get lines(): string[] {
    return this.problems.map(renderProblem);
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

/** What a build does with upstream's client/ (see BuildOptions.client). */
export type ClientMode = "build" | "sources" | false;

/** The client mode of these options: true and undefined mean "build". */
export const clientMode = (opts: Pick<BuildOptions, "client">): ClientMode => (opts.client === false ? false : opts.client === "sources" ? "sources" : "build");

/** Everything the steps share: the options, then what each step leaves for the next. */
export interface BuildContext {
  opts: BuildOptions;
  pin: Pin;
  log: (line: string) => void;
  outDir: string;
  client: ClientMode;
  node: string;
  loadPatches(): Promise<Patch[]>;
  // fetch
  upstream?: FetchedUpstream;
  stampFile?: string;
  inputs?: StampInputs;
  /** Set by fetch when the stamp already describes this build: the runner stops there. */
  upToDate?: BuildStamp;
  // materialize
  staging?: string;
  mat?: Materialized;
  // patch
  patches?: Patch[];
  /** Made by the patch step (ts-morph is loaded only when the build has work). */
  engine?: PatchEngine;
  patched?: PatchRunOutcome;
  report?: string;
  reviews: ReviewNote[];
  // gate, client, install, stamp
  gate?: GateOutcome;
  clientBuild?: ClientBuild;
  installed?: Installed;
  stamp?: BuildStamp;
}

/** One step of the build: the runner numbers, times and logs it; `run` returns the detail of its progress line. */
export interface BuildStep {
  name: string;
  /** One line: what the step does (the CLI's --help and the README list these). */
  description: string;
  /** Whether the step runs for these options. */
  when(opts: BuildOptions): boolean;
  run(ctx: BuildContext): Promise<string> | string;
}

const need = <T>(value: T | undefined, what: string): T => {
  if (value === undefined) throw new Error(`build step order: ${what} is not set yet`);
  return value;
};

/** The build, in order. A new step is one entry here. */
export const BUILD_STEPS: readonly BuildStep[] = [
  {
    name: "fetch",
    description: "fetch the pinned upstream commit (or --ref / --upstream); stop when the stamp already describes this build",
    when: () => true,
    async run(ctx) {
      const { opts, pin } = ctx;
      const upstream = await fetchUpstream({ source: opts.upstream, ref: opts.ref, allowBranch: opts.allowBranch, pin, cacheDir: upstreamCache });
      ctx.upstream = upstream;
      ctx.stampFile = path.resolve(opts.stamp ?? defaultStampFile(opts, pin, upstream.kind === "directory"));
      ctx.upToDate = await upToDate(ctx);
      return `${describeUpstream(upstream)}${upstream.cached ? " from cache" : ` from ${upstream.source}`}`;
    },
  },
  {
    name: "materialize",
    description: "copy what the runtime needs (server, scripts, package files, LICENSE and, unless --no-client, client sources) into a staging folder",
    when: () => true,
    run(ctx) {
      const parent = path.dirname(ctx.outDir);
      mkdirSync(parent, { recursive: true });
      recoverInterruptedSwap(ctx.outDir);
      ctx.staging = path.join(parent, `.${path.basename(ctx.outDir)}.staging-${process.pid}`);
      removeTree(ctx.staging);
      const withClient = { client: ctx.client !== false };
      const mat = (ctx.mat = materialize(need(ctx.upstream, "upstream").dir, ctx.staging, withClient));
      return `${mat.files.length} files (${materializedEntries(withClient).join(", ")})`;
    },
  },
  {
    name: "patch",
    description: "apply the patches in order, server and client, all in memory first; write files and source maps only when every patch applied",
    when: () => true,
    async run(ctx) {
      const all = await ctx.loadPatches();
      // Without client sources (--no-client) there is nothing for a client patch to edit.
      const patches = (ctx.patches = ctx.client === false ? all.flatMap((p) => withoutClientTargets(p) ?? []) : all);
      const [{ PatchEngine }, { patchDiffs }] = await Promise.all([import("./engine/engine.ts"), import("./report.ts")]);
      const engine = (ctx.engine = ctx.opts.engine ?? new PatchEngine());
      const patched = (ctx.patched = engine.runPatches(need(ctx.staging, "staging"), patches));
      ctx.report = ctx.opts.report === false ? "" : patchDiffs(patched.results);
      if (ctx.opts.diff && ctx.report) ctx.log(ctx.report);
      const { opts } = ctx;
      const upstream = need(ctx.upstream, "upstream");
      ctx.reviews = await reviewNotes(opts.reviewed === undefined ? (upstream.kind === "git" ? committedStampFile : null) : opts.reviewed, patched.fingerprints);
      for (const r of ctx.reviews) ctx.log(`  ${r.line}`);
      if (!patched.ok) {
        const at = ` (upstream: ${describeUpstream(upstream)})`;
        // Causes first; the patches that could not run because of them after, as "skipped (needs …)".
        const failed = patched.results.filter((r) => r.action === "failed").map((r) => ({ ...r.problem!, message: r.problem!.message + at }));
        const skipped = patched.results.filter((r) => r.action === "skipped").map((r) => r.problem!);
        throw new BuildError("patch", [...failed, ...skipped], patched.results, ctx.reviews);
      }
      const clientPatches = patches.filter(isClientPatch).length;
      return `${patches.length} patches${clientPatches ? ` (${clientPatches} on the client)` : ""}, ${patched.patchedFiles.length} files changed, ${patched.addedFiles.length} added`;
    },
  },
  {
    name: "gate",
    description: "every patch's verify and whole-tree check, a syntax check of each changed file, and the file list",
    when: () => true,
    async run(ctx) {
      const { assertGeneratedTree } = await import("./gate.ts");
      const patches = need(ctx.patches, "patches");
      const patched = need(ctx.patched, "patched");
      const gate = (ctx.gate = assertGeneratedTree({
        dir: need(ctx.staging, "staging"),
        patches,
        upstreamFiles: need(ctx.mat, "mat").files,
        patchedFiles: patched.patchedFiles,
        addedFiles: patched.addedFiles,
        nodeBinary: ctx.node,
        engine: ctx.engine,
      }));
      if (gate.problems.length > 0) throw new BuildError("gate", gate.problems, patched.results, ctx.reviews);
      if (ctx.opts.strict && ctx.reviews.length > 0) throw new BuildError("review (--strict)", ctx.reviews.map((r) => ({ message: r.line })), patched.results, ctx.reviews);
      return `${patches.length} verifies, ${patched.patchedFiles.length + patched.addedFiles.length} syntax checks, file list: ${gate.problems.length} problems`;
    },
  },
  {
    name: "client",
    description: "build upstream's client from the patched sources into client/dist (cached by a hash of those sources); only client/dist stays",
    when: (opts) => clientMode(opts) === "build",
    async run(ctx) {
      const staging = need(ctx.staging, "staging");
      // The cache key is of the patched sources (the staged files, not the maps beside them).
      const hashes = hashFiles(staging, need(ctx.mat, "mat").files.filter(isClientInput));
      const c = (ctx.clientBuild = await buildClient(staging, { hashes, nodeBinary: ctx.node, nodeVersion: nodeVersion(ctx.node), log: ctx.log, logDir: ctx.opts.logDir }));
      return `${c.files.length} files in client/dist${c.cached ? ` from cache (${c.inputHash})` : ` built (${c.inputHash})`}`;
    },
  },
  {
    name: "install",
    description: "install the runtime npm dependencies into node_modules/ (npm ci --omit=dev, cached by lockfile)",
    when: (opts) => opts.install !== false,
    async run(ctx) {
      const i = (ctx.installed = await installRuntimeDeps(need(ctx.staging, "staging"), { nodeBinary: ctx.node, log: ctx.log, logDir: ctx.opts.logDir }));
      return `${i.packages} packages, ${i.files} files into node_modules/ (npm ci --omit=dev --omit=optional --ignore-scripts${i.ranNpm ? "" : ", from cache"})`;
    },
  },
  {
    name: "stamp",
    description: "record what went in and the hash of every file that came out (build-stamp.json for the pinned release)",
    when: () => true,
    run(ctx) {
      const staging = need(ctx.staging, "staging");
      const mat = need(ctx.mat, "mat");
      const upstream = need(ctx.upstream, "upstream");
      const { clientBuild, installed } = ctx;
      ctx.stamp = {
        schema: STAMP_SCHEMA,
        upstream: { repository: upstreamLabel(upstream, ctx.pin), tag: upstream.tag, commit: upstream.commit, contentHash: mat.contentHash },
        inputs: need(ctx.inputs, "inputs"),
        outputs: hashFiles(staging, listFiles(staging)),
        fingerprints: need(ctx.patched, "patched").fingerprints,
        ...(clientBuild ? { client: { inputHash: clientBuild.inputHash } } : {}),
        ...(installed ? { runtimeDeps: { lockfile: lockHash(staging), tree: installed.hash, packages: installed.packages, files: installed.files } } : {}),
      };
      return path.relative(repoRoot, need(ctx.stampFile, "stampFile"));
    },
  },
];

/** When a step runs, in words, from its `when` (for --help and the README). */
export function stepRuns(step: BuildStep): string {
  const base: BuildOptions = { patches: [] };
  const off = [
    [{ client: false }, "--no-client"],
    [{ client: "sources" }, 'client: "sources" (drift)'],
    [{ install: false }, "--no-install"],
  ] as const;
  const skippedBy = off.filter(([o]) => !step.when({ ...base, ...o })).map(([, label]) => label);
  return skippedBy.length === 0 ? "always" : `not with ${skippedBy.join(" or ")}`;
}

/** The step table (markdown): README.md carries it between `<!-- build-steps -->` markers, a test keeps it current. */
export function stepTable(): string {
  return ["| # | step | runs | what it does |", "|---|---|---|---|", ...BUILD_STEPS.map((s, i) => `| ${i + 1} | ${s.name} | ${stepRuns(s)} | ${s.description} |`)].join("\n");
}

/** The steps that run for these options, in order. */
export const stepsFor = (opts: BuildOptions): BuildStep[] => BUILD_STEPS.filter((s) => s.when(opts));

/** Files of the materialized tree that decide the client build: client/ and the root package.json (Vite bakes in its version). */
const isClientInput = (f: string): boolean => f.startsWith(`${CLIENT_DIR}/`) || f === "package.json";

/** The runner: runs the steps for these options, numbered and timed, then publishes the staged tree. */
export async function build(opts: BuildOptions): Promise<BuildOutcome> {
  const log = opts.log ?? (() => {});
  const emit = opts.onEvent ?? ((e: BuildEvent) => { const line = renderEvent(e); if (line !== null) log(line); });
  const pin = opts.pin ?? readPin();
  let loaded: Patch[] | null = opts.unpatched ? [] : isPatchSet(opts.patches) ? null : opts.patches;
  const ctx: BuildContext = {
    opts,
    pin,
    log,
    outDir: path.resolve(opts.out ?? defaultOutDir),
    client: clientMode(opts),
    node: ensureNode22(log),
    loadPatches: async () => (loaded ??= await (opts.patches as PatchSet).load()),
    reviews: [],
  };
  const steps = stepsFor(opts);
  const timings: { step: string; ms: number }[] = [];
  try {
    for (const [i, step] of steps.entries()) {
      emit({ type: "step-start", name: step.name, index: i + 1, total: steps.length });
      const t0 = performance.now();
      const detail = await step.run(ctx);
      const ms = performance.now() - t0;
      timings.push({ step: step.name, ms });
      emit({ type: "step-end", name: step.name, index: i + 1, total: steps.length, ms, detail });
      if (ctx.upToDate) {
        const rel = path.relative(repoRoot, ctx.outDir) || ctx.outDir;
        emit({ type: "note", text: `up to date: ${rel} matches ${path.relative(repoRoot, ctx.stampFile!)} (use --force to rebuild)` });
        return { status: "up-to-date", outDir: ctx.outDir, stampFile: ctx.stampFile!, stamp: ctx.upToDate, results: [], upstream: ctx.upstream!, timings, notes: [], reviews: [] };
      }
    }
    // Epilogue, not a step (it cannot fail half-way in a way a step number would help with): swap the
    // staged tree into place, then write the review diff and the node_modules manifest beside it, then the stamp.
    const stamp = need(ctx.stamp, "stamp");
    swapIntoPlace(need(ctx.staging, "staging"), ctx.outDir);
    if (opts.report !== false) writeFileSync(`${ctx.outDir}.patches.diff`, ctx.report ?? "");
    if (ctx.installed) writeManifest(ctx.outDir, ctx.installed.manifest, ctx.installed.hash);
    else rmSync(manifestFile(ctx.outDir), { force: true });
    writeStamp(ctx.stampFile!, stamp);
    const { installed } = ctx;
    const installedSummary = installed && { hash: installed.hash, packages: installed.packages, files: installed.files, ranNpm: installed.ranNpm };
    return { status: "built", outDir: ctx.outDir, stampFile: ctx.stampFile!, stamp, results: ctx.patched!.results, upstream: ctx.upstream!, timings, notes: ctx.gate!.notes, client: ctx.clientBuild, installed: installedSummary, reviews: ctx.reviews };
  } finally {
    if (ctx.engine && ctx.engine !== opts.engine) ctx.engine.dispose();
    if (ctx.staging) removeTree(ctx.staging);
  }
}

/** Progress of a build, as data: the CLIs render it (renderEvent) or read it (the dashboard launcher). */
export type BuildEvent =
  | { type: "step-start"; name: string; index: number; total: number }
  | { type: "step-end"; name: string; index: number; total: number; ms: number; detail: string }
  | { type: "note"; text: string };

/** The log line of an event (null: nothing to print). */
export function renderEvent(e: BuildEvent): string | null {
  if (e.type === "step-start") return null;
  if (e.type === "step-end") return `[${e.index}/${e.total}] ${e.name.padEnd(11)} ${e.detail}  ${(e.ms / 1000).toFixed(2)}s`;
  return e.text;
}

/**
 * The stamp of the last build when it describes this one exactly (same upstream, inputs, shape,
 * untouched outputs), else undefined. Also sets ctx.inputs. Loads no patch module when the
 * patch hashes are remembered (see patch-set.ts).
 */
async function upToDate(ctx: BuildContext): Promise<BuildStamp | undefined> {
  const { opts } = ctx;
  const upstream = ctx.upstream!;
  const major = nodeMajor(ctx.node);
  const remembered = opts.unpatched || !isPatchSet(opts.patches) ? null : rememberedHashes(opts.patches);
  if (remembered) ctx.inputs = { ...currentInputs([], major), patches: remembered };
  else {
    ctx.inputs = currentInputs(await ctx.loadPatches(), major);
    if (isPatchSet(opts.patches) && !opts.unpatched) rememberHashes(opts.patches, ctx.inputs.patches);
  }
  const previous = readStamp(ctx.stampFile!);
  if (opts.force || !previous) return undefined;
  const upstreamFiles = listMaterializable(upstream.dir, { client: ctx.client !== false });
  // The no-op reads only files whose stat changed since the last no-op check (hashFilesByStat).
  const byStat = (root: string, files: string[]) => hashFilesByStat(root, files, path.join(cacheDir, "stat-hashes", `${sha256(path.resolve(root)).slice(0, 16)}.json`));
  const contentHash = hashManifest(byStat(upstream.dir, upstreamFiles));
  // The client's key is a hash of the patched client sources: with upstream and the patches
  // unchanged (checked here), they are unchanged too, so only whether a client was built is compared.
  const shape = { client: ctx.client === "build", install: opts.install !== false };
  const same =
    previous.upstream.commit === upstream.commit &&
    previous.upstream.contentHash === contentHash &&
    diffInputs(previous, ctx.inputs).length === 0 &&
    diffShape(previous, shape).length === 0 &&
    diffOutputs(previous, ctx.outDir, byStat).length === 0 &&
    (!previous.runtimeDeps || diffNodeModules(ctx.outDir, readManifest<TreeManifest>(ctx.outDir), previous.runtimeDeps.tree, false).length === 0);
  if (same) return previous;
  // Not a no-op: the inputs must be the loaded patches' own (the remembered ones only served the check).
  if (remembered) ctx.inputs = currentInputs(await ctx.loadPatches(), major);
  return undefined;
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
  const isDir = !!source && sourceKind(source) === "directory";
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
