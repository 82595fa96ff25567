// Step 5: record what went in and what came out, so a rebuild can be skipped and a hand edit caught.
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Patch } from "../../patches/define-patch.ts";
import { hashFiles, listFiles, sha256 } from "../lib/hash.ts";
import { repoRoot } from "../lib/paths.ts";

export const STAMP_SCHEMA = 1;

export interface StampInputs {
  /** Patch ids in application order with the hash of each patch's source and added files. */
  patches: { id: string; hash: string }[];
  /** Hash of the pipeline code (scripts/ and patches/ infrastructure). */
  engine: string;
  /** Hash of this repo's package-lock.json (tool versions). */
  lockfile: string;
  /** Major version of the Node that runs the generated tree. */
  nodeMajor: number;
}

export interface BuildStamp {
  schema: number;
  upstream: { repository: string; tag: string | null; commit: string | null; contentHash: string };
  inputs: StampInputs;
  /** sha256 of every generated file, by posix relative path. */
  outputs: Record<string, string>;
}

const ENGINE_DIRS = ["scripts", "patches/lib"];
const ENGINE_FILES = ["patches/define-patch.ts", "patches/index.ts"];

/** Hash of the pipeline itself: names and contents of every engine source file. */
export function engineHash(root = repoRoot): string {
  const files: string[] = [];
  for (const dir of ENGINE_DIRS) for (const f of listFiles(path.join(root, dir))) files.push(`${dir}/${f}`);
  for (const f of ENGINE_FILES) if (existsSync(path.join(root, f))) files.push(f);
  const hashes = hashFiles(root, files.sort());
  return sha256(Object.entries(hashes).map(([f, h]) => `${f}\0${h}\n`).join(""));
}

/** A patch's hash: its module source plus every file it adds. */
export function patchHash(patch: Patch, root = repoRoot): string {
  const file = path.join(root, "patches", `${patch.id}.ts`);
  const source = existsSync(file) ? readFileSync(file, "utf8") : JSON.stringify(patch);
  const adds = Object.keys(patch.adds ?? {}).sort().map((f) => `${f}\0${sha256(patch.adds![f])}\n`).join("");
  return sha256(`${source}\0${adds}`);
}

export function currentInputs(patches: Patch[], nodeMajor: number, root = repoRoot): StampInputs {
  return {
    patches: patches.map((p) => ({ id: p.id, hash: patchHash(p, root) })),
    engine: engineHash(root),
    lockfile: sha256(readFileSync(path.join(root, "package-lock.json"))),
    nodeMajor,
  };
}

/** Deterministic JSON: sorted output keys, no timestamps, trailing newline. */
export function serializeStamp(stamp: BuildStamp): string {
  const outputs: Record<string, string> = {};
  for (const k of Object.keys(stamp.outputs).sort()) outputs[k] = stamp.outputs[k];
  return JSON.stringify({ ...stamp, outputs }, null, 2) + "\n";
}

export function writeStamp(file: string, stamp: BuildStamp): void {
  writeFileSync(file, serializeStamp(stamp));
}

export function readStamp(file: string): BuildStamp | null {
  if (!existsSync(file)) return null;
  try {
    const s = JSON.parse(readFileSync(file, "utf8")) as BuildStamp;
    return s.schema === STAMP_SCHEMA ? s : null;
  } catch {
    return null;
  }
}

/** Inputs that differ between the stamp and now, named for the user. */
export function diffInputs(stamp: BuildStamp, now: StampInputs): string[] {
  const out: string[] = [];
  const before = new Map(stamp.inputs.patches.map((p) => [p.id, p.hash]));
  const after = new Map(now.patches.map((p) => [p.id, p.hash]));
  for (const [id, h] of after) {
    if (!before.has(id)) out.push(`patch ${id} is new since the stamp`);
    else if (before.get(id) !== h) out.push(`patch ${id} changed since the stamp`);
  }
  for (const id of before.keys()) if (!after.has(id)) out.push(`patch ${id} was removed since the stamp`);
  if (before.size === after.size && [...before.keys()].join() !== [...after.keys()].join() && out.length === 0) out.push("patch order changed since the stamp");
  if (stamp.inputs.engine !== now.engine) out.push("the pipeline engine (scripts/, patches/lib/) changed since the stamp");
  if (stamp.inputs.lockfile !== now.lockfile) out.push("package-lock.json changed since the stamp");
  if (stamp.inputs.nodeMajor !== now.nodeMajor) out.push(`runtime Node major is ${now.nodeMajor}, the stamp says ${stamp.inputs.nodeMajor}`);
  return out;
}

/** Generated files that are missing, edited or unexpected compared to the stamp. */
export function diffOutputs(stamp: BuildStamp, outDir: string): string[] {
  if (!existsSync(outDir) || readdirSync(outDir).length === 0) return [`${path.basename(outDir)}/ is missing (nothing built yet?)`];
  const out: string[] = [];
  const files = listFiles(outDir);
  const actual = hashFiles(outDir, files);
  for (const [f, h] of Object.entries(stamp.outputs)) {
    if (!(f in actual)) out.push(`${f} is missing`);
    else if (actual[f] !== h) out.push(`${f} was edited by hand (hash differs from the stamp)`);
  }
  for (const f of files) if (!(f in stamp.outputs)) out.push(`${f} is not in the stamp (added by hand?)`);
  return out;
}
