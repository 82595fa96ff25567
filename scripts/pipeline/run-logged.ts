// Long build steps (npm ci, the client build): run through zx's `$`, keep the tool's output in
// .cache/logs/<name>.log, show that the step is running and for how long, and turn a failure
// into one line plus the log's last lines and its path.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { cacheDir, repoRoot } from "../lib/paths.ts";

export const defaultLogDir = path.join(cacheDir, "logs");
const TAIL_LINES = 15;
const PROGRESS_EVERY_MS = 10_000;

/** A long step that failed: `message` is the one line, `tail` the log's last lines. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly logFile: string,
    readonly tail: string[],
  ) {
    super(message);
    this.name = "CommandError";
  }
}

export interface LoggedCommand {
  /** Log file name (without .log) and the label shown while it runs, e.g. "client-build". */
  name: string;
  /** What the user sees, e.g. "client: npm run build". */
  title: string;
  cmd: string;
  args: string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  logDir?: string;
  log?: (line: string) => void;
}

/** PATH with a Node binary's directory first, so npm and the scripts it starts run on that Node. */
export function pathWithNodeFirst(nodeBinary: string, env: NodeJS.ProcessEnv = process.env): string {
  return [path.dirname(nodeBinary), env.PATH ?? ""].filter(Boolean).join(path.delimiter);
}

const rel = (p: string) => path.relative(repoRoot, p);

/** Runs one command to completion; throws CommandError (one line + tail + log path) on failure. */
export async function runLogged(c: LoggedCommand): Promise<{ ms: number; logFile: string }> {
  const log = c.log ?? (() => {});
  const logDir = c.logDir ?? defaultLogDir;
  mkdirSync(logDir, { recursive: true });
  const logFile = path.join(logDir, `${c.name}.log`);
  const shown = rel(logFile).startsWith("..") ? logFile : rel(logFile);
  const { $ } = await import("zx/core"); // loaded only when a long step actually runs
  const t0 = performance.now();
  const run = () => $({ cwd: c.cwd, env: c.env ?? process.env, quiet: true, nothrow: true, stdio: ["ignore", "pipe", "pipe"] })`${c.cmd} ${c.args}`;

  let output;
  if (process.stderr.isTTY && c.log) {
    const { spinner } = await import("zx");
    output = await spinner(`${c.title} (log: ${shown})`, run);
  } else {
    log(`    … ${c.title} (log: ${shown})`);
    const timer = setInterval(() => log(`    … ${c.title}: still running, ${((performance.now() - t0) / 1000).toFixed(0)}s`), PROGRESS_EVERY_MS);
    try {
      output = await run();
    } finally {
      clearInterval(timer);
    }
  }
  const ms = performance.now() - t0;
  writeFileSync(logFile, `$ ${[c.cmd, ...c.args].join(" ")}\n# cwd: ${c.cwd}\n${output.stdall}\n# exit code ${output.exitCode} after ${(ms / 1000).toFixed(1)}s\n`);
  if (output.exitCode !== 0) {
    const tail = output.stdall.trimEnd().split("\n").slice(-TAIL_LINES);
    throw new CommandError(`${c.title} failed (exit code ${output.exitCode}${output.signal ? `, ${output.signal}` : ""} after ${(ms / 1000).toFixed(1)}s); full log: ${shown}`, logFile, tail);
  }
  log(`    ${c.title}  ${(ms / 1000).toFixed(2)}s`);
  return { ms, logFile };
}
