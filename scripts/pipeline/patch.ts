// Step 3: run the patches in their declared order over the materialized tree.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { originalPositionFor, TraceMap } from "@jridgewell/trace-mapping";
import MagicString, { type SourceMap } from "magic-string";
import { type Node, Project, ScriptKind, type SourceFile } from "ts-morph";
import type { Patch, PatchFile, TreeView, VerifyFile } from "../../patches/define-patch.ts";
import { recordAnchors } from "../../patches/lib/anchors.ts";
import { PatchTargetError } from "../../patches/lib/errors.ts";
import { listFiles } from "../lib/hash.ts";
import { collectUnits, type Fingerprints, unitAt } from "./fingerprint.ts";

/** "already-satisfied": a part of the patch upstream already does itself (`note` says which); "skipped": a patch it needs failed. */
export type PatchAction = "applied" | "already-applied" | "already-satisfied" | "failed" | "skipped" | "absent";

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
  // minimal: engine helper replaces this (client sources parse as TS/TSX by extension)
  const scriptKind = /\.tsx$/.test(filePath) ? ScriptKind.TSX : /\.ts$/.test(filePath) ? ScriptKind.TS : /\.jsx$/.test(filePath) ? ScriptKind.JSX : ScriptKind.JS;
  return project.createSourceFile(`/p${parseCount++}/${filePath}`, text, { overwrite: true, scriptKind });
}

// The engine parses the same text several times (verify before, apply, verify after, the gate's
// whole-tree view of files no patch touched, the fingerprints, and the next ref of a drift run, whose
// files are often unchanged): parse each (path, text) once and keep the most recent ones, enough for a
// whole tree. Evicted files stay in the project: a caller (a gate, a static test) may still hold their
// nodes, and a removed file's nodes throw.
const parsed = new Map<string, SourceFile>();
const PARSE_CACHE_MAX = 2000;

function parseCached(filePath: string, text: string): SourceFile {
  const key = `${filePath}\0${text}`;
  const hit = parsed.get(key);
  if (hit) {
    parsed.delete(key);
    parsed.set(key, hit);
    return hit;
  }
  const sf = parseJs(filePath, text);
  parsed.set(key, sf);
  if (parsed.size > PARSE_CACHE_MAX) {
    parsed.delete(parsed.keys().next().value!);
  }
  return sf;
}

function lazyAst(filePath: string, text: string): () => SourceFile {
  let ast: SourceFile | undefined;
  return () => (ast ??= parseCached(filePath, text));
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

function makeTreeView(paths: string[], read: (f: string) => string, added: Set<string>): TreeView {
  const jsFiles = [...new Set(paths)].filter((f) => /\.[cm]?js$/.test(f)).sort();
  const texts = new Map<string, string>();
  const views = new Map<string, VerifyFile>();
  const text = (f: string): string => {
    let t = texts.get(f);
    if (t === undefined) texts.set(f, (t = read(f)));
    return t;
  };
  // minimal: engine helper replaces this (client sources a client patch's verifyTree reads)
  const clientFiles = [...new Set(paths)].filter((f) => f.startsWith("client/src/") && /\.(ts|tsx|js|jsx)$/.test(f) && !/\/__tests__\//.test(f)).sort();
  return {
    jsFiles,
    clientFiles,
    text,
    file(f) {
      let v = views.get(f);
      if (!v) views.set(f, (v = verifyView(f, text(f)))); // parsed once per (path, text) by parseCached
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
export function applyPatchToText(patch: Patch, filePath: string, text: string, onAnchor?: (node: Node) => void): TextPatchOutcome {
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
  if (onAnchor) recordAnchors(onAnchor, () => patch.apply(file));
  else patch.apply(file);
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

// A patch is a pure function of its input text, and releases share many files (a drift run over 12
// tags sees 6 versions of hooks.js, 1 of compat-sqlite.js): remember recent outcomes.
const applied = new Map<string, { out: TextPatchOutcome; anchors: number[] }>();
const APPLY_CACHE_MAX = 64;

function applyMemo(patch: Patch, filePath: string, text: string): { out: TextPatchOutcome; anchors: number[] } {
  const key = `${patch.id}\0${filePath}\0${text}`;
  const hit = applied.get(key);
  if (hit) return hit;
  const anchors: number[] = [];
  const value = { out: applyPatchToText(patch, filePath, text, (n) => anchors.push(n.getStart())), anchors };
  applied.set(key, value);
  if (applied.size > APPLY_CACHE_MAX) applied.delete(applied.keys().next().value!);
  return value;
}

export interface PatchRunOutcome {
  results: PatchResult[];
  /** Files whose content the patches changed (posix relative paths). */
  patchedFiles: string[];
  /** Files added by patches. */
  addedFiles: string[];
  ok: boolean;
  /** Per patch, the upstream units around its anchors (see fingerprint.ts). */
  fingerprints: Fingerprints;
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

  const fingerprints: Fingerprints = {};
  const blocked = new Set<string>();

  for (const patch of patches) {
    // A patch whose prerequisite failed would only fail again on anchors that patch should have made.
    const missing = (patch.needs ?? []).find((id) => blocked.has(id));
    if (missing) {
      blocked.add(patch.id);
      for (const file of [...patch.targets, ...(patch.optionalTargets ?? []), ...Object.keys(patch.adds ?? {})]) {
        results.push({ patch: patch.id, file, action: "skipped", additions: 0, deletions: 0, error: `[${patch.id}] ${file}: skipped (needs ${missing})` });
      }
      continue;
    }
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
        const { out, anchors } = applyMemo(patch, target, before);
        if (out.action === "applied") {
          const sf = parseCached(target, original.get(target)!);
          const fileUnits = toUpstream(anchors, maps.get(target)).map((pos) => unitAt(sf, pos)).filter((u): u is Node => !!u);
          const fps = collectUnits(target, fileUnits);
          if (fps.length > 0) (fingerprints[patch.id] ??= []).push(...fps);
          outputLineStarts.set(out.map!, lineStarts(out.text));
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
    if (results.some((r) => r.patch === patch.id && r.action === "failed")) blocked.add(patch.id);
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

  const ok = results.every((r) => r.action !== "failed" && r.action !== "skipped");
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
  return { results, patchedFiles, addedFiles: [...added.keys()].sort(), ok, fingerprints };
}

/**
 * A patch sees the output of the patches before it, so the lines its errors name are lines of
 * that intermediate text. Name upstream's line too, through the maps of the earlier edits.
 */
function upstreamLines(message: string, earlier: SourceMap[] | undefined): string {
  if (!earlier?.length) return message;
  const trace = composedTrace(earlier);
  return message.replace(/\bline (\d+)(?!\s*\(upstream)/g, (whole, n: string) => {
    const pos = originalPositionFor(trace, { line: Number(n), column: 0 });
    if (pos.line === null) return `${whole} (a line an earlier patch added)`;
    return pos.line === Number(n) ? whole : `${whole} (upstream line ${pos.line})`;
  });
}

function composedTrace(earlier: SourceMap[]): TraceMap {
  return new TraceMap(remapping(earlier.slice().reverse().map((m) => m.toString()), () => null) as never);
}

const traces = new WeakMap<SourceMap, { trace: TraceMap; starts: number[] }>();
/** Line starts of the text each map was generated for (its output side). */
const outputLineStarts = new WeakMap<SourceMap, number[]>();

/**
 * Offsets in the text a patch received -> offsets in upstream's file, back through each earlier
 * patch's map (each parsed once), so the fingerprint is of upstream's code, not of our earlier
 * edits. Anchors inside code an earlier patch wrote have no upstream position and are dropped.
 */
function toUpstream(offsets: number[], earlier: SourceMap[] | undefined): number[] {
  let out = offsets;
  for (const map of (earlier ?? []).slice().reverse()) {
    let t = traces.get(map);
    if (!t) {
      t = { trace: new TraceMap(map.toString()), starts: lineStarts(map.sourcesContent?.[0] ?? "") };
      traces.set(map, t);
    }
    const { trace, starts } = t;
    const outStarts = outputLineStarts.get(map)!;
    out = out.flatMap((off) => {
      let lo = 0;
      let hi = outStarts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (outStarts[mid] <= off) lo = mid;
        else hi = mid - 1;
      }
      const pos = originalPositionFor(trace, { line: lo + 1, column: off - outStarts[lo] });
      return pos.line === null || pos.column === null ? [] : [(starts[pos.line - 1] ?? 0) + pos.column];
    });
  }
  return out;
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  return starts;
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
