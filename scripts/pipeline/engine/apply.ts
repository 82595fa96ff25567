// Applying one patch to one text: pure, a text in, the patched text and its source map out.
import { structuredPatch } from "diff";
import MagicString, { type SourceMap } from "magic-string";
import type { Node, SourceFile } from "ts-morph";
import type { Patch, PatchFile, VerifyFile } from "../../../patches/define-patch.ts";
import { recordAnchors } from "../../../patches/lib/anchors.ts";
import { type Finding, PatchTargetError } from "../../../patches/lib/errors.ts";
import { type Parse, parseSource, verifyView } from "./parse.ts";

export interface TextPatchOutcome {
  action: "applied" | "already-applied";
  text: string;
  map: SourceMap | null;
  /** Parts upstream already does (file.satisfied). */
  satisfied: string[];
}

export interface ApplyOptions {
  /** Called with each anchor the patch's finders return while apply runs. */
  onAnchor?: (node: Node) => void;
  /** The engine's parse cache (default: a parse of its own). */
  parse?: Parse;
  /** The engine's verify memo (default: the patch's verify on a fresh view). */
  verify?: (patch: Patch, view: VerifyFile) => Finding[];
}

/**
 * Apply one patch to one file's text. Pure. A file that already satisfies `verify` is
 * "already-applied" and returned unchanged; an applied patch must then pass `verify`.
 */
export function applyPatchToText(patch: Patch, filePath: string, text: string, opts: ApplyOptions | ((node: Node) => void) = {}): TextPatchOutcome {
  const { onAnchor, parse = parseSource, verify = (p: Patch, v: VerifyFile) => p.verify(v) } = typeof opts === "function" ? { onAnchor: opts } : opts;
  if (verify(patch, verifyView(filePath, text, parse)).length === 0) return { action: "already-applied", text, map: null, satisfied: [] };
  const edit = new MagicString(text);
  let ast: SourceFile | undefined;
  const satisfied: string[] = [];
  const file: PatchFile = {
    path: filePath,
    text,
    edit,
    get ast() {
      return (ast ??= parse(filePath, text));
    },
    satisfied: (what) => void satisfied.push(what),
  };
  if (onAnchor) recordAnchors(onAnchor, () => patch.apply(file));
  else patch.apply(file);
  if (!edit.hasChanged()) {
    throw new PatchTargetError(patch.id, filePath, "edit", 0, "apply() changed nothing although verify() reports the patch missing.");
  }
  const out = edit.toString();
  const problems = verify(patch, verifyView(filePath, out, parse));
  const map = edit.generateMap({ source: filePath, hires: "boundary", includeContent: true });
  if (problems.length > 0) {
    // The lines are the patched text's: carry the map so the engine can name upstream's line too.
    throw new VerifyFailure(patch.id, filePath, problems, map);
  }
  return { action: "applied", text: out, map, satisfied };
}

/** apply() ran but the patch's verify() still finds problems in the output (whose lines they name, hence the map). */
export class VerifyFailure extends Error {
  constructor(
    readonly patchId: string,
    readonly file: string,
    readonly problems: Finding[],
    readonly map: SourceMap,
  ) {
    super(`[${patchId}] ${file}: applied, but verify still fails: ${problems.join("; ")}`);
    this.name = "VerifyFailure";
  }
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
