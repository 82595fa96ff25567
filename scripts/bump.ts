#!/usr/bin/env -S npx tsx
// `npm run bump -- --to <tag|sha>`: move the pin to another upstream release in one reviewable step.
// The drift column first, then the normal build into .generated/; the pin and the stamp change only
// when both pass. The commit is left to the maintainer. See --help.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { chalk } from "zx";
import type { Patch } from "../patches/define-patch.ts";
import { patches as allPatches } from "../patches/index.ts";
import { driftColumn, isClean, matrixText } from "./drift.ts";
import { cliArgs, existingPath, flag, isMain, option } from "./lib/cli.ts";
import { UserError } from "./lib/errors.ts";
import { defaultOutDir, repoRoot } from "./lib/paths.ts";
import { isFullSha, type Pin, pinFile as defaultPinFile, readPin, shortSha } from "./lib/pin.ts";
import { build, BuildError, committedStampFile, type BuildOutcome } from "./pipeline/build.ts";
import { sourceKind, UPSTREAM_ENV } from "./pipeline/fetch.ts";
import { type BuildStamp, diffInputs, readStamp } from "./pipeline/stamp.ts";
import { patchDiffs } from "./pipeline/report.ts";

export interface BumpOptions {
  to: string;
  upstream?: string;
  pinFile?: string;
  stampFile?: string;
  out?: string;
  /** Re-review notes fail the bump. */
  strict?: boolean;
  patches?: Patch[];
  log?: (line: string) => void;
}

export interface BumpOutcome {
  from: Pin;
  to: Pin;
  outcome: BuildOutcome;
  /** The stamp's changes, one line each. */
  stampChanges: string[];
  commitCommand: string;
}

/** The tag and commit to pin: a listed release, a tag of the mirror, or a full SHA (tag, if one points at it). */
export function resolveTarget(to: string, pin: Pin, mirror: string): { tag: string; commit: string } {
  const git = (...args: string[]) => execFileSync("git", ["-C", mirror, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  if (isFullSha(to)) {
    const listed = Object.entries(pin.releases).find(([, sha]) => sha === to)?.[0];
    if (listed) return { tag: listed, commit: to };
    let tags = "";
    try {
      git("cat-file", "-e", `${to}^{commit}`);
      tags = git("tag", "--points-at", to);
    } catch {
      throw new UserError(`${mirror} does not contain commit ${to}; update the mirror (git fetch) or pick another --to`);
    }
    return { tag: tags.split("\n").filter(Boolean).sort().pop() ?? to, commit: to };
  }
  let commit: string;
  try {
    commit = git("rev-parse", "--verify", "--quiet", `refs/tags/${to}^{commit}`);
  } catch {
    throw new UserError(`--to ${to} is neither a tag of ${mirror} nor a full 40-hex commit; update the mirror (git fetch --tags) or pick a listed tag`);
  }
  if (pin.releases[to] && pin.releases[to] !== commit) {
    throw new UserError(`tag ${to} in ${mirror} is ${commit}, but upstream.pin.json lists ${pin.releases[to]}; the tag moved upstream, re-pin deliberately`);
  }
  return { tag: to, commit };
}

/** What changed between the stamp on disk and the new one, summarized for review. */
export function stampChanges(before: BuildStamp | null, after: BuildStamp): string[] {
  if (!before) return ["no previous stamp: everything is new"];
  const out: string[] = [];
  const u0 = before.upstream;
  const u1 = after.upstream;
  if (u0.tag !== u1.tag || u0.commit !== u1.commit) out.push(`upstream: ${u0.tag ?? "-"} (${shortSha(u0.commit)}) -> ${u1.tag ?? "-"} (${shortSha(u1.commit)})`);
  if (u0.contentHash !== u1.contentHash) out.push(`upstream content hash: ${u0.contentHash.slice(0, 12)} -> ${u1.contentHash.slice(0, 12)}`);
  out.push(...diffInputs(before, after.inputs).map((l) => `input: ${l}`));
  const changed = Object.keys(after.outputs).filter((f) => f in before.outputs && before.outputs[f] !== after.outputs[f]);
  const added = Object.keys(after.outputs).filter((f) => !(f in before.outputs));
  const removed = Object.keys(before.outputs).filter((f) => !(f in after.outputs));
  const list = (files: string[]) => (files.length > 8 ? `${files.slice(0, 8).join(", ")}, … (${files.length - 8} more)` : files.join(", "));
  out.push(`outputs: ${changed.length} changed, ${added.length} added, ${removed.length} removed (of ${Object.keys(after.outputs).length})`);
  if (changed.length) out.push(`  changed: ${list(changed)}`);
  if (added.length) out.push(`  added: ${list(added)}`);
  if (removed.length) out.push(`  removed: ${list(removed)}`);
  const units = (s: BuildStamp) => new Map(Object.entries(s.fingerprints ?? {}).flatMap(([p, us]) => us.map((u) => [`${p} ${u.file} ${u.function}`, u.hash] as const)));
  const f0 = units(before);
  const f1 = units(after);
  const refp = [...f1].filter(([k, h]) => f0.has(k) && f0.get(k) !== h).length;
  out.push(`fingerprints: ${f1.size} anchored upstream units, ${refp} changed, ${[...f1.keys()].filter((k) => !f0.has(k)).length} new, ${[...f0.keys()].filter((k) => !f1.has(k)).length} gone`);
  return out;
}

export function serializePin(pin: Pin): string {
  return JSON.stringify({ repository: pin.repository, tag: pin.tag, commit: pin.commit, releases: pin.releases }, null, 2) + "\n";
}

export class BumpRefused extends Error {
  constructor(
    message: string,
    readonly problems: string[],
  ) {
    super(message);
    this.name = "BumpRefused";
  }
}

/** The bump. Throws BumpRefused (nothing written) when the drift column or the build fails. */
export async function bump(opts: BumpOptions): Promise<BumpOutcome> {
  const log = opts.log ?? (() => {});
  const pinPath = path.resolve(opts.pinFile ?? defaultPinFile);
  const stampPath = path.resolve(opts.stampFile ?? committedStampFile);
  const out = path.resolve(opts.out ?? defaultOutDir);
  const patches = opts.patches ?? allPatches;
  const upstream = opts.upstream || process.env[UPSTREAM_ENV];
  if (!upstream || sourceKind(upstream) !== "git-dir") {
    throw new UserError(`bump reads the new tag's commit from a local clone or mirror: pass --upstream <path> or set ${UPSTREAM_ENV} (got ${upstream ?? "nothing"})`);
  }
  const from = readPin(pinPath);
  const target = resolveTarget(opts.to, from, upstream);
  const to: Pin = { ...from, tag: target.tag, commit: target.commit, releases: { ...from.releases, [target.tag]: target.commit } };
  log(`bump: ${from.tag} (${shortSha(from.commit)}) -> ${to.tag} (${shortSha(to.commit)})${from.releases[target.tag] ? "" : " (new release: SHA from the mirror)"}`);

  log(`[1/3] drift column for ${to.tag} (reviewed: ${path.relative(repoRoot, stampPath) || stampPath})`);
  const column = await driftColumn(to.tag, { upstream, pin: to, patches, reviewed: stampPath });
  log(matrixText([column], patches.map((p) => p.id)).split("\n").map((l) => `  ${l}`).join("\n"));
  if (!isClean(column, !!opts.strict)) {
    const problems = [...Object.entries(column.cells).filter(([, c]) => c.status === "failed" || c.status === "skipped" || (opts.strict && c.status === "re-review")).map(([id, c]) => `${id}: ${c.status}: ${c.reason ?? ""}`), ...column.errors];
    throw new BumpRefused(`${to.tag} is not clean; nothing was changed`, problems);
  }

  const previous = readStamp(stampPath);
  log(`[2/3] build ${to.tag} into ${path.relative(repoRoot, out) || out}`);
  let outcome: BuildOutcome;
  try {
    outcome = await build({ upstream, ref: to.tag, pin: to, out, stamp: stampPath, reviewed: stampPath, strict: opts.strict, force: true, patches, log: (l) => log(`  ${l}`) });
  } catch (err) {
    if (err instanceof BuildError) throw new BumpRefused(`the build of ${to.tag} failed at ${err.step}; nothing was changed`, err.lines);
    throw err;
  }

  log("[3/3] review");
  log(patchDiffs(outcome.results));
  const changes = stampChanges(previous, outcome.stamp);
  log(`stamp changes (${path.relative(repoRoot, stampPath) || stampPath}):`);
  for (const c of changes) log(`  ${c}`);
  if (outcome.reviews.length > 0) {
    log(`re-review (${outcome.reviews.length}):`);
    for (const r of outcome.reviews) log(`  ${r.line}`);
  } else log("re-review: none (every anchored upstream function is as reviewed)");

  writeFileSync(pinPath, serializePin(to));
  const rel = (p: string) => path.relative(process.cwd(), p) || p;
  const commitCommand = `git add ${rel(pinPath)} ${rel(stampPath)} && git commit -m "Bump upstream to ${to.tag} (${shortSha(to.commit)})"`;
  return { from, to, outcome, stampChanges: changes, commitCommand };
}

export const BUMP_CLI = {
  command: "npm run bump --",
  usage: "--to <tag|sha> [flags]",
  description: `Moves upstream.pin.json to another upstream release: runs that ref's drift column, builds it into
.generated/agent-monitor (the normal build), prints each patch's diff, the stamp's changes and any
re-review notes, then updates upstream.pin.json (tag, commit, releases) and build-stamp.json.
Nothing is committed: the last line is the git command to run. A bump whose drift column or build
fails (a patch, a gate) changes nothing.`,
  options: {
    to: option("<tag|sha>", "the release tag (its SHA is read from the mirror) or full 40-hex commit"),
    upstream: option("<src>", `local clone or mirror of upstream (default: $${UPSTREAM_ENV})`),
    strict: flag(`"applies — re-review" notes fail the bump too`),
    pin: option("<file>", "pin file (default: upstream.pin.json)", existingPath),
    stamp: option("<file>", "stamp file (default: build-stamp.json)"),
    out: option("<dir>", "output folder (default: .generated/agent-monitor)"),
  },
  examples: ["npm run bump -- --to v2.0.4", "npm run bump -- --to v2.0.4 --strict"],
};

async function main(): Promise<number> {
  const parsed = cliArgs(BUMP_CLI);
  if (!parsed) return 0;
  const args = parsed.values;
  if (!args.to) throw new UserError(`--to <tag|sha> is required, e.g. npm run bump -- --to v2.0.4; see ${BUMP_CLI.command} --help`);
  const t0 = performance.now();
  const res = await bump({ to: args.to, upstream: args.upstream, strict: args.strict, pinFile: args.pin, stampFile: args.stamp, out: args.out, log: (l) => console.log(l) });
  console.log(chalk.green(`bumped ${res.from.tag} -> ${res.to.tag} in ${((performance.now() - t0) / 1000).toFixed(1)}s: upstream.pin.json and the stamp updated, nothing committed.`));
  console.log(`review ${path.relative(process.cwd(), res.outcome.outDir)}.patches.diff, then commit:\n  ${res.commitCommand}`);
  return 0;
}

if (isMain(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      if (err instanceof BumpRefused) {
        console.error(chalk.red(`bump refused: ${err.message}:`));
        for (const p of err.problems) console.error(`  - ${p}`);
        console.error("Update the patches for this release (npm run drift shows which), or bump to another ref.");
      } else console.error(chalk.red(`error: ${err instanceof UserError ? err.message : (err as Error).stack}`));
      process.exit(1);
    },
  );
}

