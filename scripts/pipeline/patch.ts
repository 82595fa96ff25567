// Step 3: run the patches in their declared order over the materialized tree.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { originalPositionFor, TraceMap } from "@jridgewell/trace-mapping";
import MagicString, { type SourceMap } from "magic-string";
import { Project, ScriptKind, type SourceFile } from "ts-morph";
import type { Patch, PatchFile, TreeView, VerifyFile } from "../../patches/define-patch.ts";
import { PatchTargetError } from "../../patches/lib/errors.ts";
import { listFiles } from "../lib/hash.ts";

/** "already-satisfied": a part of the patch upstream already does itself (`note` says which). */
export type PatchAction = "applied" | "already-applied" | "already-satisfied" | "failed" | "absent";

export interface PatchResult {
  patch: string;
  file: string;
  action: PatchAction;
  additions: number;
  deletions: number;
  /** Unified-diff inputs for the review report (text before and after this patch). */
  before?: string;
  after?: string;
  error?: string;
  /** For "already-satisfied": the part upstream already does. */
  note?: string;
  /** The file is not a declared target: the patch's discover() found it in the tree. */
  discovered?: boolean;
}

const remapping = createRequire(import.meta.url)("@ampproject/remapping") as typeof import("@ampproject/remapping").default;

const project = new Project({
  useInMemoryFileSystem: true,
  skipAddingFilesFromTsConfig: true,
  skipFileDependencyResolution: true,
  compilerOptions: { allowJs: true, noLib: true, noResolve: true },
});
let parseCount = 0;

/** Parse JS text into a throwaway ts-morph SourceFile (locating only, no type-check). */
export function parseJs(filePath: string, text: string): SourceFile {
  return project.createSourceFile(`/p${parseCount++}/${filePath}`, text, { overwrite: true, scriptKind: ScriptKind.JS });
}

function lazyAst(filePath: string, text: string): () => SourceFile {
  let ast: SourceFile | undefined;
  return () => (ast ??= parseJs(filePath, text));
}

export function verifyView(filePath: string, text: string): VerifyFile {
  const ast = lazyAst(filePath, text);
  return {
    path: filePath,
    text,
    get ast() {
      return ast();
    },
  };
}

/**
 * The tree at `root` as patches see it: `overlay` holds texts changed in memory (by earlier
 * patches), `added` the files patches add. Each file is parsed at most once per view.
 */
export function treeView(root: string, opts: { overlay?: Map<string, string>; added?: Iterable<string> } = {}): TreeView {
  const overlay = opts.overlay ?? new Map<string, string>();
  const added = new Set(opts.added ?? []);
  return makeTreeView([...listFiles(root), ...added], (f) => overlay.get(f) ?? readFileSync(path.join(root, f), "utf8"), added);
}

/** A tree held in memory (path -> text), for tests of whole-tree checks. */
export function memoryTreeView(files: Record<string, string>, added: string[] = []): TreeView {
  return makeTreeView(Object.keys(files), (f) => files[f], new Set(added));
}

/**
 * Parsed views by path and text, shared between tree views: the gate's view of a file no patch
 * touched reuses the parse discover() made, and so does the next build of a ref with the same file.
 * Read-only views only (VerifyFile), so sharing is safe; bounded, oldest dropped first.
 */
const viewCache = new Map<string, VerifyFile>();
function sharedView(f: string, text: string): VerifyFile {
  const key = `${f}\0${text}`;
  let v = viewCache.get(key);
  if (!v) {
    if (viewCache.size >= 2000) viewCache.delete(viewCache.keys().next().value!);
    viewCache.set(key, (v = verifyView(f, text)));
  }
  return v;
}

function makeTreeView(paths: string[], read: (f: string) => string, added: Set<string>): TreeView {
  const jsFiles = [...new Set(paths)].filter((f) => /\.[cm]?js$/.test(f)).sort();
  const texts = new Map<string, string>();
  const views = new Map<string, VerifyFile>();
  const text = (f: string): string => {
    let t = texts.get(f);
    if (t === undefined) texts.set(f, (t = read(f)));
    return t;
  };
  return {
    jsFiles,
    text,
    file(f) {
      let v = views.get(f);
      if (!v) views.set(f, (v = sharedView(f, text(f))));
      return v;
    },
    // Declared additions, and our runtime files in a tree built before (they open with a [patch:<id>] comment).
    isAdded: (f) => added.has(f) || OUR_RUNTIME_HEADER.test(text(f)),
  };
}

const OUR_RUNTIME_HEADER = /^(?:"use strict";\s*)?(?:\/\/|\/\*\*?)\s*\[patch:[a-z0-9-]+\]/;

export interface TextPatchOutcome {
  action: "applied" | "already-applied";
  text: string;
  map: SourceMap | null;
  /** Parts upstream already does (file.satisfied). */
  satisfied: string[];
}

/**
 * Apply one patch to one file's text. Pure. A file that already satisfies `verify` is
 * "already-applied" and returned unchanged; an applied patch must then pass `verify`.
 */
export function applyPatchToText(patch: Patch, filePath: string, text: string): TextPatchOutcome {
  if (patch.verify(verifyView(filePath, text)).length === 0) return { action: "already-applied", text, map: null, satisfied: [] };
  const edit = new MagicString(text);
  const ast = lazyAst(filePath, text);
  const satisfied: string[] = [];
  const file: PatchFile = {
    path: filePath,
    text,
    edit,
    get ast() {
      return ast();
    },
    satisfied: (what) => void satisfied.push(what),
  };
  patch.apply(file);
  if (!edit.hasChanged()) {
    throw new PatchTargetError(patch.id, filePath, "edit", 0, "apply() changed nothing although verify() reports the patch missing.");
  }
  const out = edit.toString();
  const problems = patch.verify(verifyView(filePath, out));
  const map = edit.generateMap({ source: filePath, hires: "boundary", includeContent: true });
  if (problems.length > 0) {
    // The lines are the patched text's: carry the map so runPatches can name upstream's line too.
    throw Object.assign(new Error(`[${patch.id}] ${filePath}: applied, but verify still fails: ${problems.join("; ")}`), { map });
  }
  return { action: "applied", text: out, map, satisfied };
}

export interface PatchRunOutcome {
  results: PatchResult[];
  /** Files whose content the patches changed (posix relative paths). */
  patchedFiles: string[];
  /** Files added by patches. */
  addedFiles: string[];
  ok: boolean;
}

/**
 * Apply `patches` in order to the tree at `root`. Every target of every patch is computed in
 * memory first; files are written only when all patches succeeded, so a failure never leaves
 * a partly patched file behind. A source map (output -> upstream) is written next to each
 * patched file as `<file>.map`.
 */
export function runPatches(root: string, patches: Patch[]): PatchRunOutcome {
  const current = new Map<string, string>();
  const original = new Map<string, string>();
  const maps = new Map<string, SourceMap[]>();
  const results: PatchResult[] = [];
  const added = new Map<string, string>();

  for (const patch of patches) {
    const optional = new Set(patch.optionalTargets ?? []);
    const declared = new Set([...patch.targets, ...optional]);
    const discovered = (patch.discover?.(treeView(root, { overlay: new Map([...added, ...current]), added: added.keys() })) ?? []).filter((f) => !declared.has(f) && !added.has(f));
    for (const target of [...declared, ...discovered]) {
      if (!current.has(target)) {
        const abs = path.join(root, target);
        if (!existsSync(abs) && optional.has(target)) {
          results.push({ patch: patch.id, file: target, action: "absent", additions: 0, deletions: 0 });
          continue;
        }
        if (!existsSync(abs)) {
          results.push(failure(patch, target, `[${patch.id}] ${target}: target file is missing from upstream. Moved or deleted upstream?`));
          continue;
        }
        const text = readFileSync(abs, "utf8");
        current.set(target, text);
        original.set(target, text);
      }
      const before = current.get(target)!;
      try {
        const out = applyPatchToText(patch, target, before);
        if (out.action === "applied") {
          current.set(target, out.text);
          maps.set(target, [...(maps.get(target) ?? []), out.map!]);
        }
        const found = discovered.includes(target) ? { discovered: true } : {};
        for (const note of out.satisfied) results.push({ patch: patch.id, file: target, action: "already-satisfied", additions: 0, deletions: 0, note, ...found });
        results.push({ patch: patch.id, file: target, action: out.action, ...lineDelta(before, out.text), before, after: out.text, ...found });
      } catch (err) {
        const own = (err as { map?: SourceMap }).map;
        results.push(failure(patch, target, upstreamLines((err as Error).message, [...(maps.get(target) ?? []), ...(own ? [own] : [])])));
      }
    }
    for (const [file, content] of Object.entries(patch.adds ?? {})) {
      const abs = path.join(root, file);
      if (existsSync(abs) || added.has(file)) {
        results.push(failure(patch, file, `[${patch.id}] ${file}: declared as a new file, but upstream already has it. Upstream added its own? Rename ours or drop the addition.`));
        continue;
      }
      added.set(file, content);
      results.push({ patch: patch.id, file, action: "applied", additions: content.split("\n").length, deletions: 0, before: "", after: content });
    }
  }

  const ok = results.every((r) => r.action !== "failed");
  const patchedFiles = [...current.keys()].filter((f) => current.get(f) !== original.get(f)).sort();
  if (ok) {
    for (const file of patchedFiles) {
      writeFileSync(path.join(root, file), current.get(file)!);
      const chain = maps.get(file)!.slice().reverse();
      const composed = remapping(chain.map((m) => m.toString()), () => null);
      composed.file = path.posix.basename(file);
      writeFileSync(path.join(root, `${file}.map`), JSON.stringify(composed) + "\n");
    }
    for (const [file, content] of added) {
      mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      writeFileSync(path.join(root, file), content);
    }
  }
  return { results, patchedFiles, addedFiles: [...added.keys()].sort(), ok };
}

/**
 * A patch sees the output of the patches before it, so the lines its errors name are lines of
 * that intermediate text. Name upstream's line too, through the maps of the earlier edits.
 */
function upstreamLines(message: string, earlier: SourceMap[] | undefined): string {
  if (!earlier?.length) return message;
  const chain = earlier.slice().reverse();
  const trace = new TraceMap(remapping(chain.map((m) => m.toString()), () => null) as never);
  return message.replace(/\bline (\d+)(?!\s*\(upstream)/g, (whole, n: string) => {
    const pos = originalPositionFor(trace, { line: Number(n), column: 0 });
    if (pos.line === null) return `${whole} (a line an earlier patch added)`;
    return pos.line === Number(n) ? whole : `${whole} (upstream line ${pos.line})`;
  });
}

function failure(patch: Patch, file: string, error: string): PatchResult {
  return { patch: patch.id, file, action: "failed", additions: 0, deletions: 0, error };
}

/** Lines added/removed between two texts (multiset difference; cheap and good enough for a summary). */
function lineDelta(before: string, after: string): { additions: number; deletions: number } {
  if (before === after) return { additions: 0, deletions: 0 };
  const count = new Map<string, number>();
  for (const l of before.split("\n")) count.set(l, (count.get(l) ?? 0) + 1);
  let additions = 0;
  for (const l of after.split("\n")) {
    const n = count.get(l) ?? 0;
    if (n > 0) count.set(l, n - 1);
    else additions++;
  }
  let deletions = 0;
  for (const n of count.values()) deletions += n;
  return { additions, deletions };
}
