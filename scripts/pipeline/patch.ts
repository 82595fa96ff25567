// The patch engine: parse and tree views, applying one patch to one text, running the patches in
// their declared order over the materialized tree (server and client sources), and the source maps.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { originalPositionFor, TraceMap } from "@jridgewell/trace-mapping";
import { structuredPatch } from "diff";
import MagicString, { type SourceMap } from "magic-string";
import { type Node, Project, ScriptKind, type SourceFile } from "ts-morph";
import { type Patch, type PatchFile, type TreeView, type VerifyFile } from "../../patches/define-patch.ts";
import { recordAnchors } from "../../patches/lib/anchors.ts";
import { lineRef, PatchTargetError, type Problem } from "../../patches/lib/errors.ts";
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
  /** For "failed" and "skipped": what went wrong (renderProblem makes it a line). */
  problem?: Problem;
  /** For "skipped": the prerequisite patch that failed. */
  needs?: string;
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

/** How a source file is parsed, by its extension (.tsx TSX, .ts TS, .jsx JSX, anything else JS). */
export function scriptKindOf(filePath: string): ScriptKind {
  if (filePath.endsWith(".tsx")) return ScriptKind.TSX;
  if (filePath.endsWith(".ts") || filePath.endsWith(".mts") || filePath.endsWith(".cts")) return ScriptKind.TS;
  if (filePath.endsWith(".jsx")) return ScriptKind.JSX;
  return ScriptKind.JS;
}

/** Parse source text into a throwaway ts-morph SourceFile, by extension (locating only, no type-check). */
export function parseSource(filePath: string, text: string): SourceFile {
  return project.createSourceFile(`/p${parseCount++}/${filePath}`, text, { overwrite: true, scriptKind: scriptKindOf(filePath) });
}

/** Parse JS text (or TS/TSX by the path's extension; see parseSource). */
export const parseJs = parseSource;

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
  const sf = parseSource(filePath, text);
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
  const unique = [...new Set(paths)].sort();
  // Server-side JS only: the client is its own world (clientFiles), and only its built dist ships.
  const jsFiles = unique.filter((f) => /\.[cm]?js$/.test(f) && !f.startsWith("client/"));
  const clientFiles = unique.filter((f) => f.startsWith(CLIENT_SOURCES) && /\.(tsx?|jsx?)$/.test(f) && !f.includes("/__tests__/"));
  const texts = new Map<string, string>();
  const views = new Map<string, VerifyFile>();
  const text = (f: string): string => {
    let t = texts.get(f);
    if (t === undefined) texts.set(f, (t = read(f)));
    return t;
  };
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

/** Where a client patch's whole-tree check looks (TreeView.clientFiles). */
const CLIENT_SOURCES = "client/src/";

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
    throw new VerifyFailure(patch.id, filePath, problems, map);
  }
  return { action: "applied", text: out, map, satisfied };
}

// A patch is a pure function of its input text, and releases share many files (a drift run over 12
// tags sees 6 versions of hooks.js, 1 of compat-sqlite.js): remember recent outcomes, per patch
// object (two patches with one id, e.g. an edited one in a test, never share an outcome).
const applied = new WeakMap<Patch, Map<string, { out: TextPatchOutcome; anchors: number[] }>>();
const APPLY_CACHE_MAX = 64;

function applyMemo(patch: Patch, filePath: string, text: string): { out: TextPatchOutcome; anchors: number[] } {
  let memo = applied.get(patch);
  if (!memo) applied.set(patch, (memo = new Map()));
  const key = `${filePath}\0${text}`;
  const hit = memo.get(key);
  if (hit) return hit;
  const anchors: number[] = [];
  const value = { out: applyPatchToText(patch, filePath, text, (n) => anchors.push(n.getStart())), anchors };
  memo.set(key, value);
  if (memo.size > APPLY_CACHE_MAX) memo.delete(memo.keys().next().value!);
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
        results.push({ patch: patch.id, file, action: "skipped", additions: 0, deletions: 0, problem: { patch: patch.id, file, message: `skipped (needs ${missing})` }, needs: missing });
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
          results.push(failure(patch, target, "target file is missing from upstream. Moved or deleted upstream?"));
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
        results.push({ ...failure(patch, target, ""), problem: targetFailure(patch, target, err, maps.get(target)) });
      }
    }
    if (results.some((r) => r.patch === patch.id && r.action === "failed")) blocked.add(patch.id);
    for (const [file, content] of Object.entries(patch.adds ?? {})) {
      const abs = path.join(root, file);
      if (existsSync(abs) || added.has(file)) {
        results.push(failure(patch, file, "declared as a new file, but upstream already has it. Upstream added its own? Rename ours or drop the addition."));
        continue;
      }
      added.set(file, content);
      results.push({ patch: patch.id, file, action: "applied", ...lineDelta("", content), before: "", after: content });
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

/** apply() ran but the patch's verify() still finds problems in the output (whose lines they name, hence the map). */
export class VerifyFailure extends Error {
  constructor(
    readonly patchId: string,
    readonly file: string,
    readonly problems: string[],
    readonly map: SourceMap,
  ) {
    super(`[${patchId}] ${file}: applied, but verify still fails: ${problems.join("; ")}`);
    this.name = "VerifyFailure";
  }
}

/**
 * What went wrong applying `patch` to `file`, as a Problem. A patch sees the output of the patches
 * before it, so the lines it names are lines of that intermediate text: name upstream's line too,
 * through the maps of the earlier edits. A locator miss's nearest candidate is data (its line is
 * mapped as a number); only the free text a patch writes itself (its verify findings, a detail)
 * is annotated where it says "line N", the patches' convention (frame() in patches/lib/find.ts).
 */
function targetFailure(patch: Patch, file: string, err: unknown, earlier: SourceMap[] = []): Problem {
  if (err instanceof PatchTargetError) {
    const toUpstream = upstreamLineOf(earlier);
    return err.problem(err.nearest && toUpstream ? toUpstream(err.nearest.line) : undefined, annotateLines(err.detail, toUpstream));
  }
  if (err instanceof VerifyFailure) {
    const toUpstream = upstreamLineOf([...earlier, err.map]);
    return { patch: patch.id, file, message: `applied, but verify still fails: ${err.problems.map((p) => annotateLines(p, toUpstream)).join("; ")}` };
  }
  return { patch: patch.id, file, message: annotateLines((err as Error).message, upstreamLineOf(earlier)) };
}

/** A line of the patched text -> upstream's line (null: an earlier patch wrote it); undefined when no edit came before. */
function upstreamLineOf(earlier: SourceMap[]): ((line: number) => number | null) | undefined {
  if (earlier.length === 0) return undefined;
  const trace = composedTrace(earlier);
  return (line) => originalPositionFor(trace, { line, column: 0 }).line;
}

function annotateLines(text: string, toUpstream: ((line: number) => number | null) | undefined): string {
  if (!toUpstream) return text;
  return text.replace(/\bline (\d+)(?!\s*\(upstream)/g, (_whole, n: string) => lineRef(Number(n), toUpstream(Number(n))));
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

function failure(patch: Patch, file: string, message: string): PatchResult {
  return { patch: patch.id, file, action: "failed", additions: 0, deletions: 0, problem: { patch: patch.id, file, message } };
}

/**
 * Lines added and removed between two texts, counted from the same line diff as the review
 * report's hunk (report.ts), so the "+a -d" above a hunk always equals the hunk's own lines.
 */
export function lineDelta(before: string, after: string): { additions: number; deletions: number } {
  if (before === after) return { additions: 0, deletions: 0 };
  let additions = 0;
  let deletions = 0;
  for (const hunk of structuredPatch("a", "b", before, after, "", "", { context: 0 }).hunks) {
    for (const l of hunk.lines) {
      if (l[0] === "+") additions++;
      else if (l[0] === "-") deletions++;
    }
  }
  return { additions, deletions };
}
