// The frame every CLI shares: each option is declared once (value name, help text, default,
// validator); --help and the one-line errors are generated from those declarations.
import { existsSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { UserError } from "./errors.ts";

/** A declared option; `read` turns the raw flag (absent: undefined) into its value or throws a UserError. */
export interface Option<T> {
  /** Value name in --help, e.g. "<dir>"; none for a boolean flag. */
  value?: string;
  short?: string;
  /** Help text; "\n" continues it on the next line, aligned under the first. */
  help: string;
  read(raw: string | undefined, flag: string): T;
}

export type Options = Record<string, Option<unknown>>;
export type Values<O extends Options> = { [K in keyof O]: O[K] extends Option<infer T> ? T : never };

/** A check of one raw value: returns the parsed value or throws a UserError naming the flag. */
export type Validator<T> = (raw: string, flag: string) => T;

export function flag(help: string, short?: string): Option<boolean> {
  return { help, short, read: (raw) => raw !== undefined };
}

/** An option with a value; without a default it is undefined when absent. */
export function option(value: string, help: string): Option<string | undefined>;
export function option<T>(value: string, help: string, validate: Validator<T>): Option<T | undefined>;
export function option<T>(value: string, help: string, validate: Validator<T> | undefined, fallback: T): Option<T>;
export function option<T>(value: string, help: string, validate?: Validator<T>, fallback?: T): Option<T | string | undefined> {
  // The default goes at the end of the first line, before any continuation lines.
  const note = ` (default ${Array.isArray(fallback) ? fallback.join(",") : String(fallback)})`;
  const shown = fallback === undefined ? help : help.replace(/\n|$/, (end) => note + end);
  return { value, help: shown, read: (raw, name) => (raw === undefined ? fallback : validate ? validate(raw, name) : raw) };
}

const fail = (flag: string, wanted: string, raw: string): never => {
  throw new UserError(`${flag} wants ${wanted}, got "${raw}"`);
};

/** A number >= min (and <= max); `whole` also requires an integer. */
export function number(opts: { min: number; max?: number; whole?: boolean }): Validator<number> {
  const { min, max, whole } = opts;
  const wanted = `${whole ? "a whole number" : "a number"} ${max === undefined ? `>= ${min}` : `${min}-${max}`}`;
  return (raw, flag) => {
    const n = Number(raw);
    const ok = raw.trim() !== "" && Number.isFinite(n) && n >= min && (max === undefined || n <= max) && (!whole || Number.isInteger(n));
    return ok ? n : fail(flag, wanted, raw);
  };
}

/** Comma-separated positive integers, duplicates dropped, order kept. */
export const intList: Validator<number[]> = (raw, flag) => {
  const parts = raw.split(",").map((s) => s.trim());
  if (parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1)) fail(flag, "positive integers separated by commas", raw);
  return [...new Set(parts.map(Number))];
};

export function oneOf<const T extends string>(allowed: readonly T[]): Validator<T> {
  return (raw, flag) => ((allowed as readonly string[]).includes(raw) ? (raw as T) : fail(flag, allowed.join(" or "), raw));
}

/** Comma-separated values from `allowed`, duplicates dropped. */
export function listOf<const T extends string>(allowed: readonly T[]): Validator<T[]> {
  const one = oneOf(allowed);
  return (raw, flag) => {
    const parts = raw.split(",").map((s) => s.trim());
    if (parts.some((p) => !(allowed as readonly string[]).includes(p))) fail(flag, `a comma-separated list of ${allowed.join(", ")}`, raw);
    return [...new Set(parts.map((p) => one(p, flag)))];
  };
}

export const existingPath: Validator<string> = (raw, flag) => (existsSync(raw) ? raw : fail(flag, "an existing path", raw));

export interface Command<O extends Options> {
  /** How it is run, up to its flags, e.g. "npm run build --"; errors point at `<command> --help`. */
  command: string;
  /** What follows the command in the usage line (default "[flags]"). */
  usage?: string;
  description: string;
  options: O;
  /** Name of the positional arguments in --help; without it a positional argument is an error. */
  positionals?: string;
  environment?: Record<string, string>;
  examples?: string[];
}

/** With --help, values are the defaults (the other flags are not checked). */
export interface Parsed<O extends Options> {
  help: boolean;
  values: Values<O>;
  positionals: string[];
}

const HELP_OPTION: Option<boolean> = flag("show this help", "h");

/** The declared options plus -h/--help, as [flag column, help] rows. */
function rows(cmd: Command<Options>): [string, string][] {
  return Object.entries({ ...cmd.options, help: HELP_OPTION }).map(([name, o]) => [`${o.short ? `-${o.short}, ` : ""}--${name}${o.value ? ` ${o.value}` : ""}`, o.help]);
}

/** The generated --help text. */
export function helpText(cmd: Command<Options>): string {
  const table = (entries: [string, string][]) => {
    const width = Math.max(...entries.map(([k]) => k.length)) + 3;
    return entries.flatMap(([k, text]) => text.split("\n").map((line, i) => `  ${(i === 0 ? k : "").padEnd(width)}${line}`));
  };
  const usage = cmd.usage ?? `[flags]${cmd.positionals ? ` ${cmd.positionals}` : ""}`;
  const out = [`Usage: ${cmd.command} ${usage}`, "", cmd.description, "", "Flags:", ...table(rows(cmd))];
  if (cmd.environment) out.push("", "Environment:", ...table(Object.entries(cmd.environment)));
  if (cmd.examples) out.push("", "Examples:", ...cmd.examples.map((e) => `  ${e}`));
  return out.join("\n");
}

/**
 * Parse argv against the declarations. Unknown flags, missing or empty values and bad values are one
 * UserError line; --help anywhere wins over everything else.
 */
export function parseCli<O extends Options>(cmd: Command<O>, argv: string[]): Parsed<O> {
  const all: Options = { ...cmd.options, help: HELP_OPTION };
  const see = `see ${cmd.command} --help`;
  const config = Object.fromEntries(Object.entries(all).map(([name, o]) => [name, { type: o.value ? ("string" as const) : ("boolean" as const), ...(o.short ? { short: o.short } : {}) }]));
  const { tokens } = parseArgs({ args: argv, options: config, allowPositionals: true, strict: false, tokens: true });
  const help = tokens.some((t) => t.kind === "option" && t.name === "help");
  const raw: Record<string, string | undefined> = {};
  const positionals: string[] = [];
  for (const t of help ? [] : tokens) {
    if (t.kind === "positional") {
      if (!cmd.positionals) throw new UserError(`unexpected argument "${t.value}"; ${see}`);
      positionals.push(t.value);
    }
    if (t.kind !== "option") continue;
    const o = all[t.name];
    if (!o) throw new UserError(`unknown flag ${t.rawName}; ${see}`);
    if (!o.value) {
      if (t.value !== undefined) throw new UserError(`${t.rawName} takes no value; ${see}`);
      raw[t.name] = "";
    } else if (t.value === undefined || t.value.trim() === "" || (!t.inlineValue && t.value.startsWith("-"))) {
      throw new UserError(`${t.rawName} needs a value (${o.value}); ${see}`);
    } else raw[t.name] = t.value;
  }
  const values = Object.fromEntries(Object.entries(cmd.options).map(([name, o]) => [name, o.read(raw[name], `--${name}`)]));
  return { help, values: values as Values<O>, positionals };
}

/**
 * parseCli for a CLI's main: prints --help and returns null when asked for it, so main can return 0.
 * Errors are thrown as UserError for the CLI's own error handler (one line, exit 1).
 */
export function cliArgs<O extends Options>(cmd: Command<O>, argv = process.argv.slice(2)): { values: Values<O>; positionals: string[] } | null {
  const parsed = parseCli(cmd, argv);
  if (!parsed.help) return { values: parsed.values, positionals: parsed.positionals };
  console.log(helpText(cmd));
  return null;
}

/**
 * True when the module at `moduleUrl` is the script node was started with (so a module that exports its
 * declarations for tests runs its main only from the command line). Real paths: a symlinked or
 * space-holding checkout must still run.
 */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (!script || !existsSync(script)) return false;
  return realpathSync(fileURLToPath(moduleUrl)) === realpathSync(script);
}
