// The patch engine as an object: it owns its parse cache and memos (no module state), runs the
// patches in their declared order over a materialized tree (runPatches), and serves the gate the
// same parsed files and verify results. One engine per build; a drift run shares one across its
// refs (releases share most files) and each run releases what the ref before it did not use.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { SourceMap } from "magic-string";
import type { Node, SourceFile } from "ts-morph";
import type { Patch, TreeView, VerifyFile } from "../../../patches/define-patch.ts";
import { type Finding, PatchDriftError, PatchTargetError, type Problem, renderFinding } from "../../../patches/lib/errors.ts";
import { collectUnits, type Fingerprints, unitAt } from "../fingerprint.ts";
import { parseErrors } from "../syntax.ts";
import { applyPatchToText, lineDelta, type TextPatchOutcome, VerifyFailure } from "./apply.ts";
import { parseSource, treeView, verifyView } from "./parse.ts";
import { MapTracer, upstreamLineOf } from "./source-maps.ts";

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
 * Values keyed by (path, text), each stamped with the run that last used it. Keyed by the text
 * itself (a Map per path), not by a hash: equal texts are equal inputs, nothing else is.
 */
class TextMemo<V> {
  private readonly byPath = new Map<string, Map<string, { value: V; run: number }>>();

  constructor(private readonly engine: PatchEngine) {}

  get(filePath: string, text: string, make: () => V): V {
    let texts = this.byPath.get(filePath);
    if (!texts) this.byPath.set(filePath, (texts = new Map()));
    const hit = texts.get(text);
    if (hit) {
      hit.run = this.engine.run;
      return hit.value;
    }
    const value = make();
    texts.set(text, { value, run: this.engine.run });
    return value;
  }

  /** Drop what no run since `oldest` used. */
  release(oldest: number): number {
    let released = 0;
    for (const [p, texts] of this.byPath) {
      for (const [t, e] of texts) if (e.run < oldest) texts.delete(t), released++;
      if (texts.size === 0) this.byPath.delete(p);
    }
    return released;
  }
}

export class PatchEngine {
  /** Runs (builds, drift refs) this engine has served; memo entries carry the last one that used them. */
  run = 0;
  /** Files parsed (each (path, text) once while it is in use). */
  parses = 0;
  private readonly memos: TextMemo<unknown>[] = [];
  private readonly sources = this.memo<SourceFile>();
  /** Per patch object (two patches with one id, e.g. an edited one in a test, never share an entry). */
  private readonly perPatch = new Map<Patch, { verify: TextMemo<Finding[]>; report: TextMemo<string[]>; apply: TextMemo<{ out: TextPatchOutcome; anchors: number[] }> }>();
  private readonly syntax = this.memo<Problem[]>();
  private readonly tracer = new MapTracer();

  private memo<V>(): TextMemo<V> {
    const m = new TextMemo<V>(this);
    this.memos.push(m as TextMemo<unknown>);
    return m;
  }

  private of(patch: Patch) {
    let m = this.perPatch.get(patch);
    if (!m) this.perPatch.set(patch, (m = { verify: this.memo(), report: this.memo(), apply: this.memo() }));
    return m;
  }

  /**
   * Start a new run (a build, a drift ref): what the run before it used stays (the next release
   * shares most files), anything older is released.
   */
  beginRun(): void {
    this.run++;
    for (const m of this.memos) m.release(this.run - 1);
  }

  /** Release everything (the engine can still be used: it parses again). */
  dispose(): void {
    for (const m of this.memos) m.release(Infinity);
    this.perPatch.clear();
  }

  /** The SourceFile of (path, text), parsed once while in use (verify before, apply, verify after, the gate, the fingerprints, the next ref). */
  parse = (filePath: string, text: string): SourceFile =>
    this.sources.get(filePath, text, () => {
      this.parses++;
      return parseSource(filePath, text);
    });

  /** A patch's verify of (path, text): a pure function of them, computed once while in use. */
  verify = (patch: Patch, view: VerifyFile): Finding[] => this.of(patch).verify.get(view.path, view.text, () => patch.verify(view));

  /** The syntax errors of client sources (syntax.ts), each (path, text) checked once while in use. */
  parseErrors(files: { rel: string; text: string }[]): Problem[] {
    return files.flatMap((f) => this.syntax.get(f.rel, f.text, () => parseErrors([f])));
  }

  /** A patch's report lines for (path, text), like verify. */
  report(patch: Patch, view: VerifyFile): string[] {
    return patch.report ? this.of(patch).report.get(view.path, view.text, () => patch.report!(view)) : [];
  }

  verifyView(filePath: string, text: string): VerifyFile {
    return verifyView(filePath, text, this.parse);
  }

  treeView(root: string, opts: { overlay?: Map<string, string>; added?: Iterable<string> } = {}): TreeView {
    return treeView(root, { ...opts, parse: this.parse });
  }

  /** applyPatchToText through the memos, with the anchors' offsets (a patch is a pure function of its input text). */
  private apply(patch: Patch, filePath: string, text: string): { out: TextPatchOutcome; anchors: number[] } {
    return this.of(patch).apply.get(filePath, text, () => {
      const anchors: number[] = [];
      const out = applyPatchToText(patch, filePath, text, { onAnchor: (n: Node) => anchors.push(n.getStart()), parse: this.parse, verify: this.verify });
      return { out, anchors };
    });
  }

  /**
   * Apply `patches` in order to the tree at `root`. Every target of every patch is computed in
   * memory first; files are written only when all patches succeeded, so a failure never leaves
   * a partly patched file behind. A source map (output -> upstream) is written next to each
   * patched file as `<file>.map`.
   */
  runPatches(root: string, patches: Patch[]): PatchRunOutcome {
    this.beginRun();
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
      const discovered = (patch.discover?.(this.treeView(root, { overlay: new Map([...added, ...current]), added: added.keys() })) ?? []).filter((f) => !declared.has(f) && !added.has(f));
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
          const { out, anchors } = this.apply(patch, target, before);
          if (out.action === "applied") {
            const sf = this.parse(target, original.get(target)!);
            const fileUnits = this.tracer.toUpstream(anchors, maps.get(target)).map((pos) => unitAt(sf, pos)).filter((u): u is Node => !!u);
            const fps = collectUnits(target, fileUnits);
            if (fps.length > 0) (fingerprints[patch.id] ??= []).push(...fps);
            this.tracer.output(out.map!, out.text);
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
      // A patch with only optional targets, none of them in this release: nothing would use its runtime files.
      const nothingToPatch = patch.targets.length === 0 && discovered.length === 0 && [...optional].every((f) => results.some((r) => r.patch === patch.id && r.file === f && r.action === "absent"));
      for (const [file, content] of nothingToPatch ? [] : Object.entries(patch.adds ?? {})) {
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
        writeFileSync(path.join(root, `${file}.map`), this.tracer.compose(maps.get(file)!, path.posix.basename(file)) + "\n");
      }
      for (const [file, content] of added) {
        mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
        writeFileSync(path.join(root, file), content);
      }
    }
    return { results, patchedFiles, addedFiles: [...added.keys()].sort(), ok, fingerprints };
  }
}

/**
 * What went wrong applying `patch` to `file`, as a Problem. A patch sees the output of the patches
 * before it, so the lines it names are lines of that intermediate text: name upstream's line too,
 * through the maps of the earlier edits. The lines are data (a locator's nearest candidate, the At
 * parts of a Finding: patches/lib/errors.ts), rendered here once; no message is read back.
 */
function targetFailure(patch: Patch, file: string, err: unknown, earlier: SourceMap[] = []): Problem {
  if (err instanceof PatchTargetError || err instanceof PatchDriftError) return err.problem(upstreamLineOf(earlier));
  if (err instanceof VerifyFailure) {
    const toUpstream = upstreamLineOf([...earlier, err.map]);
    return { patch: patch.id, file, message: `applied, but verify still fails: ${err.problems.map((p) => renderFinding(p, toUpstream)).join("; ")}` };
  }
  return { patch: patch.id, file, message: (err as Error).message };
}

function failure(patch: Patch, file: string, message: string): PatchResult {
  return { patch: patch.id, file, action: "failed", additions: 0, deletions: 0, problem: { patch: patch.id, file, message } };
}
