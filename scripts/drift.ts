#!/usr/bin/env -S npx tsx
// `npm run drift`: build every release in upstream.pin.json (plus refs given on the command line)
// in-process into .cache/drift/, and print a patch x ref matrix. See --help.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { chalk } from "zx";
import { ALREADY_SATISFIED, type Patch } from "../patches/define-patch.ts";
import { type Problem, renderProblem } from "../patches/lib/errors.ts";
import { patches as allPatches } from "../patches/index.ts";
import { cliArgs, flag, isMain, option } from "./lib/cli.ts";
import { runCli } from "./lib/dashboard.ts";
import { UserError } from "./lib/errors.ts";
import { cacheDir, repoRoot } from "./lib/paths.ts";
import { isFullSha, type Pin, readPin, shortSha } from "./lib/pin.ts";
import { build, BuildError, type BuildOutcome, committedStampFile } from "./pipeline/build.ts";
import { readStamp } from "./pipeline/stamp.ts";
import { UPSTREAM_ENV } from "./pipeline/fetch.ts";
import type { ReviewNote } from "./pipeline/fingerprint.ts";
import type { PatchEngine, PatchResult } from "./pipeline/patch.ts";

export type CellStatus = "applied" | "already applied" | typeof ALREADY_SATISFIED | "re-review" | "failed" | "skipped" | "absent";

export interface DriftCell {
  status: CellStatus;
  /** One line: the failure, the missing prerequisite, or what changed upstream. */
  reason?: string;
}

export interface DriftColumn {
  ref: string;
  /** `v2.0.3 (edd7a75)` */
  label: string;
  commit: string | null;
  cells: Record<string, DriftCell>;
  /** Problems not owned by one patch (syntax, file list), or why the ref could not be built at all. */
  errors: string[];
  reviews: ReviewNote[];
  outcome?: BuildOutcome;
  ms: number;
}

export interface DriftOptions {
  upstream?: string;
  refs: string[];
  allowBranch?: boolean;
  pin?: Pin;
  patches?: Patch[];
  /** Stamp whose fingerprints were last reviewed (default: the committed build-stamp.json). */
  reviewed?: string | null;
  /** Where the throwaway builds go (default .cache/drift). */
  workDir?: string;
  log?: (line: string) => void;
  /** The patch engine the refs share (default: one for the run). */
  engine?: PatchEngine;
}

export const driftWorkDir = path.join(cacheDir, "drift");

/** One patch's cell from its results, the gate's problems and the re-review notes. */
function cell(patch: Patch, results: PatchResult[], gateProblems: Problem[], reviews: ReviewNote[]): DriftCell {
  const mine = results.filter((r) => r.patch === patch.id);
  const failed = mine.find((r) => r.action === "failed");
  if (failed) return { status: "failed", reason: failed.problem ? oneLine(failed.problem) : "failed" };
  const gate = gateProblems.find((p) => p.patch === patch.id);
  if (gate) return { status: "failed", reason: `gate: ${oneLine(gate)}` };
  const skipped = mine.find((r) => r.action === "skipped");
  if (skipped) return { status: "skipped", reason: skipped.needs ? `skipped (needs ${skipped.needs})` : "skipped" };
  const review = reviews.filter((r) => r.patch === patch.id);
  if (review.length > 0) return { status: "re-review", reason: review.map((r) => `${r.file} ${r.function}: ${r.summary}`).join("; ") };
  if (mine.length === 0) return { status: "skipped", reason: "not run (an earlier step failed)" };
  if (mine.some((r) => r.action === "applied")) {
    return mine.some((r) => r.action === "already-satisfied") ? { status: "applied", reason: `part ${ALREADY_SATISFIED}` } : { status: "applied" };
  }
  if (mine.some((r) => r.action === "already-satisfied")) return { status: ALREADY_SATISFIED };
  if (mine.some((r) => r.action === "already-applied")) return { status: "already applied" };
  return { status: "absent", reason: "no target file in this release" };
}

/** A problem as a cell's reason: its first line, without the patch (the row names it), at most 300 characters. */
function oneLine(p: Problem): string {
  const first = renderProblem({ ...p, patch: undefined }).split("\n")[0];
  return first.length > 300 ? `${first.slice(0, 297)}...` : first;
}

/** Build one ref into a throwaway folder and turn the outcome into a column of the matrix. */
export async function driftColumn(ref: string, opts: Omit<DriftOptions, "refs">): Promise<DriftColumn> {
  const patches = opts.patches ?? allPatches;
  const pin = opts.pin ?? readPin();
  const work = opts.workDir ?? driftWorkDir;
  const out = path.join(work, ref.replace(/[^A-Za-z0-9._-]/g, "_"), "agent-monitor");
  const t0 = performance.now();
  const col: DriftColumn = { ref, label: ref, commit: pin.releases[ref] ?? (isFullSha(ref) ? ref : null), cells: {}, errors: [], reviews: [], ms: 0 };
  const fill = (results: PatchResult[], gateProblems: Problem[], reviews: ReviewNote[]) => {
    col.reviews = reviews;
    for (const p of patches) col.cells[p.id] = cell(p, results, gateProblems, reviews);
    col.errors.push(...gateProblems.filter((g) => !patches.some((p) => g.patch === p.id)).map(renderProblem));
  };
  try {
    const outcome = await build({ upstream: opts.upstream, ref, allowBranch: opts.allowBranch, out, stamp: `${out}.stamp.json`, force: true, reviewed: opts.reviewed, pin, patches, client: "sources", install: false, report: false, engine: opts.engine }); // verdicts only: client sources patched and gated but not built, no npm install or review diff per ref
    col.commit = outcome.upstream.commit;
    col.label = isFullSha(ref) ? shortSha(ref) : `${ref} (${shortSha(outcome.upstream.commit)})`;
    col.outcome = outcome;
    fill(outcome.results, [], outcome.reviews);
  } catch (err) {
    if (err instanceof BuildError) fill(err.results, err.step === "patch" ? [] : err.problems, err.reviews);
    else col.errors.push((err as Error).message.split("\n")[0]);
  } finally {
    rmSync(path.dirname(out), { recursive: true, force: true });
  }
  col.ms = performance.now() - t0;
  return col;
}

/** The pin's releases in order, then the extra refs (each once). */
export function driftRefs(pin: Pin, extra: string[]): string[] {
  return [...new Set([...Object.keys(pin.releases), ...extra])];
}

export async function runDrift(opts: DriftOptions): Promise<DriftColumn[]> {
  const columns: DriftColumn[] = [];
  // One engine for the run: releases share most files, so each ref reuses the parses and patch
  // results of the ref before it for the texts that did not change (the engine releases the rest).
  const { PatchEngine } = await import("./pipeline/engine/engine.ts");
  const engine = opts.engine ?? new PatchEngine();
  for (const ref of opts.refs) {
    const col = await driftColumn(ref, { ...opts, engine });
    opts.log?.(`  ${col.label.padEnd(18)} ${summarizeColumn(col)}  ${(col.ms / 1000).toFixed(2)}s`);
    columns.push(col);
  }
  if (engine !== opts.engine) engine.dispose();
  return columns;
}

/** A column is clean when it built and no patch failed or was skipped (strict: and nothing to re-review). */
export function isClean(col: DriftColumn, strict: boolean): boolean {
  const cells = Object.values(col.cells);
  if (col.errors.length > 0 || cells.length === 0) return false;
  return cells.every((c) => c.status !== "failed" && c.status !== "skipped" && (!strict || c.status !== "re-review"));
}

function summarizeColumn(col: DriftColumn): string {
  if (Object.keys(col.cells).length === 0) return `error: ${col.errors[0]}`;
  const counts = new Map<string, number>();
  for (const c of Object.values(col.cells)) counts.set(c.status, (counts.get(c.status) ?? 0) + 1);
  return [...counts].map(([s, n]) => `${n} ${s}`).join(", ") + (col.errors.length ? `, ${col.errors.length} other problems` : "");
}

const SHORT: Record<CellStatus, string> = {
  applied: "applied",
  "already applied": "already",
  [ALREADY_SATISFIED]: "satisfied",
  "re-review": "re-review",
  failed: "FAILED",
  skipped: "skipped",
  absent: "n/a",
};

interface Rendered {
  header: string[];
  rows: string[][];
  notes: string[];
}

/** The matrix as rows (patch x ref) plus numbered notes for every reason. */
function render(columns: DriftColumn[], patchIds: string[], short: boolean): Rendered {
  const notes: string[] = [];
  const header = ["patch", ...columns.map((c) => (short ? c.ref : c.label))];
  const rows = patchIds.map((id) => [
    id,
    ...columns.map((col) => {
      const c = col.cells[id];
      if (!c) return "-";
      const label = short ? SHORT[c.status] : c.status;
      if (!c.reason) return label;
      notes.push(`${col.ref} ${id}: ${c.status}: ${c.reason}`);
      return `${label} [${notes.length}]`;
    }),
  ]);
  for (const col of columns) for (const e of col.errors) notes.push(`${col.ref}: ${e}`);
  return { header, rows, notes };
}

/** Aligned text for the terminal. */
export function matrixText(columns: DriftColumn[], patchIds: string[]): string {
  const { header, rows, notes } = render(columns, patchIds, true);
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const lines = all.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
  lines.splice(1, 0, widths.map((w) => "-".repeat(w)).join("  "));
  return [...lines, "", ...notes.map((n, i) => `[${i + 1}] ${n}`)].join("\n").trimEnd();
}

export function matrixMarkdown(columns: DriftColumn[], patchIds: string[], title: string): string {
  const { header, rows, notes } = render(columns, patchIds, false);
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  return [
    `# ${title}`,
    "",
    `| ${header.map(esc).join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
    "",
    ...notes.map((n, i) => `${i + 1}. ${n}`),
    "",
  ].join("\n");
}

export const DRIFT_CLI = {
  command: "npm run drift --",
  positionals: "[ref ...]",
  description: `Builds every release in upstream.pin.json, plus each ref given (a tag or a full 40-hex commit;
a branch only with --allow-branch), in this process into .cache/drift/ (never .generated/ or
build-stamp.json), and prints a patch x ref matrix: applied / already applied / already satisfied
by upstream / re-review / failed (with the reason) / skipped (needs <id>).
Exit 0 when the pinned release and the newest ref (the last column) are clean.`,
  options: {
    upstream: option("<src>", `local clone or mirror of upstream (default: $${UPSTREAM_ENV})`),
    "allow-branch": flag("accept branch names among the refs (their tip is pinned by nothing)"),
    markdown: option("<file>", "where to write the Markdown copy (default: .cache/drift/drift.md)"),
    strict: flag("a re-review cell makes a column unclean"),
    "only-refs": flag("build only the refs given, not the pin's releases"),
  },
  examples: ["npm run drift", "npm run drift -- --only-refs v2.0.3 main --allow-branch"],
};

async function main(): Promise<number> {
  const parsed = cliArgs(DRIFT_CLI);
  if (!parsed) return 0;
  const args = parsed.values;
  const upstream = args.upstream || process.env[UPSTREAM_ENV];
  if (!upstream) throw new UserError(`drift needs a local clone or mirror of upstream: pass --upstream <path> or set ${UPSTREAM_ENV}`);
  if (args["only-refs"] && parsed.positionals.length === 0) throw new UserError("--only-refs needs at least one ref (e.g. npm run drift -- --only-refs v2.0.3)");
  const pin = readPin();
  const refs = args["only-refs"] ? [...new Set(parsed.positionals)] : driftRefs(pin, parsed.positionals);
  const markdown = path.resolve(args.markdown ?? path.join(driftWorkDir, "drift.md"));

  console.log(`drift: building ${refs.length} refs from ${upstream} into ${path.relative(repoRoot, driftWorkDir)}/ (in-process; .generated/ and build-stamp.json untouched)`);
  const t0 = performance.now();
  const columns = await runDrift({ upstream, refs, allowBranch: args["allow-branch"], pin, log: (l) => console.log(l) });
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  const ids = allPatches.map((p) => p.id);
  console.log("");
  console.log(matrixText(columns, ids));
  const reviewed = readStamp(committedStampFile);
  if (columns.some((c) => c.reviews.length > 0)) {
    console.log(`(re-review: the upstream function around an anchor differs from the one reviewed in build-stamp.json, ${reviewed?.upstream.tag ?? "?"}; not a failure unless --strict)`);
  }
  mkdirSync(path.dirname(markdown), { recursive: true });
  writeFileSync(markdown, matrixMarkdown(columns, ids, `Patch drift: ${refs.length} upstream refs (pinned ${pin.tag})`));
  console.log(`\nmarkdown: ${path.relative(process.cwd(), markdown) || markdown}`);

  const strict = !!args.strict;
  const pinned = columns.find((c) => c.commit === pin.commit || c.ref === pin.tag);
  const newest = columns[columns.length - 1];
  const bad = [pinned, newest].filter((c): c is DriftColumn => !!c && !isClean(c, strict));
  if (!pinned && !args["only-refs"]) bad.push({ ref: pin.tag } as DriftColumn);
  if (bad.length === 0) {
    console.log(chalk.green(`drift: ${refs.length} refs in ${secs}s; pinned ${pin.tag} and newest ${newest.ref} are clean`));
    return 0;
  }
  console.error(chalk.red(`drift: ${refs.length} refs in ${secs}s; not clean: ${[...new Set(bad.map((c) => c.ref))].join(", ")} (see the notes above; update the patches or pin another release)`));
  return 1;
}

if (isMain(import.meta.url)) runCli(main);
