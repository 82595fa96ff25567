#!/usr/bin/env -S npx tsx
// `npm run build`: fetch the pinned upstream, patch, gate, stamp. See --help.
import path from "node:path";
import { styleText } from "node:util";
import { ALREADY_SATISFIED } from "../patches/define-patch.ts";
import { cliArgs, flag, isMain, option } from "./lib/cli.ts";
import { UserError } from "./lib/errors.ts";
import { repoRoot } from "./lib/paths.ts";
import { UPSTREAM_ENV } from "./pipeline/fetch.ts";
import { build, BUILD_STEPS, BuildError, check } from "./pipeline/build.ts";
import { lazyPatches } from "./pipeline/patch-set.ts";
import { CommandError } from "./pipeline/run-logged.ts";

export const BUILD_CLI = {
  command: "npm run build --",
  description: `Builds the patched Agent Monitor into .generated/agent-monitor/ and writes build-stamp.json.
Steps: ${BUILD_STEPS.map((s) => s.name).join(" -> ")} (then an atomic swap into place).
The output starts with Node 22: NODE_ENV=production node server/index.js`,
  options: {
    upstream: option("<src>", `where to get upstream: a git URL, a local clone or bare mirror, or a plain
directory (default: $${UPSTREAM_ENV}, else the URL in upstream.pin.json)`),
    ref: option("<ref>", `tag or full commit to build (default: the pin); tags are checked against
"releases" in upstream.pin.json`),
    "allow-branch": flag("accept a branch name for --ref (builds its current tip; nothing pins it)"),
    out: option("<dir>", "output folder (default: .generated/agent-monitor)"),
    stamp: option("<file>", `stamp file (default: build-stamp.json for the pinned release into the default
folder, otherwise <out>.stamp.json)`),
    force: flag("rebuild even when the stamp says the output is up to date"),
    check: flag(`write nothing; exit 1 naming every generated file edited by hand or missing
and every input whose hash no longer matches the stamp`),
    diff: flag("print each patch's unified diff (always written to <out>.patches.diff)"),
    unpatched: flag("build upstream without patches (the benchmark's baseline)"),
    strict: flag(`fail when upstream code around a patch anchor changed since the reviewed
build-stamp.json ("applies — re-review"; a warning otherwise)`),
    "no-client": flag("do not build upstream's web client into client/dist (sources-only tree)"),
    "no-install": flag("do not install the runtime npm deps into <out>/node_modules"),
    quiet: flag("print only errors and the final line"),
  },
  environment: {
    [UPSTREAM_ENV]: "default for --upstream (e.g. a local mirror when offline)",
    AGENT_MONITOR_NODE: "a Node >= 22 binary for the gate (default: npm node@22 in .cache/node22)",
  },
  examples: ["npm run build", "npm run build -- --check", `${UPSTREAM_ENV}=<mirror> npm run build -- --ref v2.0.4 --out ../am-v2.0.4`],
};

// Colour only for a terminal that wants it (node:util, not zx's chalk: a no-op build loads nothing it does not use).
const paint = (color: "green" | "red" | "yellow", text: string, stream: NodeJS.WriteStream) =>
  stream.isTTY && !process.env.NO_COLOR ? styleText(color, text) : text;
const chalk = {
  green: (t: string) => paint("green", t, process.stdout),
  red: (t: string) => paint("red", t, process.stderr),
  yellow: (t: string) => paint("yellow", t, process.stdout),
};

async function main(): Promise<number> {
  const parsed = cliArgs(BUILD_CLI);
  if (!parsed) return 0;
  const args = parsed.values;
  const log = args.quiet ? () => {} : (line: string) => console.log(line);
  const rel = (p: string) => path.relative(repoRoot, p) || ".";

  if (args.check) {
    const patches = await lazyPatches().load();
    const res = check({ out: args.out, stamp: args.stamp, upstream: args.upstream, ref: args.ref, unpatched: args.unpatched, patches });
    if (res.ok) {
      console.log(chalk.green(`check ok: generated tree and inputs match ${rel(res.stampFile)}`));
      return 0;
    }
    console.error(chalk.red(`check failed against ${rel(res.stampFile)}:`));
    for (const p of res.problems) console.error(`  - ${p}`);
    console.error("Rebuild with: npm run build (add --force to rebuild regardless)");
    return 1;
  }

  const t0 = performance.now();
  const outcome = await build({
    upstream: args.upstream,
    ref: args.ref,
    allowBranch: args["allow-branch"],
    out: args.out,
    stamp: args.stamp,
    force: args.force,
    diff: args.diff,
    unpatched: args.unpatched,
    strict: args.strict,
    client: !args["no-client"],
    install: !args["no-install"],
    patches: lazyPatches(),
    log,
  });
  const secs = ((performance.now() - t0) / 1000).toFixed(2);
  if (outcome.status === "up-to-date") {
    console.log(chalk.green(`up to date (${secs}s): nothing to do`));
    return 0;
  }
  if (!args.quiet) {
    for (const note of outcome.notes) log(`  ${note}`);
    for (const r of outcome.results.filter((x) => x.action === "already-satisfied")) log(`  ${ALREADY_SATISFIED}: [${r.patch}] ${r.file}: ${r.note}`);
    log("");
    const { resultsTable } = await import("./pipeline/report.ts");
    log(resultsTable(outcome.results));
    log("");
  }
  if (args.quiet) for (const r of outcome.reviews) console.log(chalk.yellow(r.line));
  const applied = outcome.results.filter((r) => r.action === "applied").length;
  const already = outcome.results.filter((r) => r.action === "already-applied").length;
  const satisfied = outcome.results.filter((r) => r.action === "already-satisfied").length;
  console.log(
    chalk.green(`built ${rel(outcome.outDir)} in ${secs}s`) +
      ` — upstream ${outcome.stamp.upstream.tag ?? outcome.stamp.upstream.commit ?? outcome.stamp.upstream.repository}, ` +
      `${applied} edits applied, ${already} already applied${satisfied ? `, ${satisfied} ${ALREADY_SATISFIED}` : ""}${outcome.reviews.length ? `, ${outcome.reviews.length} to re-review` : ""}; stamp ${rel(outcome.stampFile)}; review ${rel(outcome.outDir)}.patches.diff`,
  );
  return 0;
}

if (isMain(import.meta.url)) main().then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof CommandError) {
      console.error(chalk.red(`error: ${err.message}`));
      console.error(`last lines of ${path.relative(repoRoot, err.logFile)}:`);
      for (const line of err.tail) console.error(`  | ${line}`);
    } else if (err instanceof UserError) {
      console.error(chalk.red(`error: ${err.message}`));
    } else if (err instanceof BuildError) {
      console.error(chalk.red(`build failed at ${err.step}; the previous output was left untouched:`));
      for (const p of err.lines) console.error(`  - ${p}`);
      if (err.step === "patch") console.error("A patch target moved upstream: update the patch (npm run drift shows which releases it holds on).");
      if (err.step.startsWith("review")) console.error("Upstream changed around these anchors: review the patches against it, then rebuild without --strict to record the new fingerprints.");
    } else {
      console.error(err);
    }
    process.exit(1);
  },
);
