// The patch engine's entry points (the engine itself is scripts/pipeline/engine/: parse.ts parses
// and makes the views patches see, apply.ts applies one patch to one text, source-maps.ts composes
// and walks the maps, engine.ts owns the caches and runs the patches over a tree).
import type { Patch } from "../../patches/define-patch.ts";
import { type PatchRunOutcome, PatchEngine } from "./engine/engine.ts";

export { applyPatchToText, lineDelta, type TextPatchOutcome, VerifyFailure } from "./engine/apply.ts";
export { type PatchAction, PatchEngine, type PatchResult, type PatchRunOutcome } from "./engine/engine.ts";
export { memoryTreeView, parseSource, scriptKindOf, treeView, verifyView } from "./engine/parse.ts";
/** Parse JS text (or TS/TSX by the path's extension; see parseSource). */
export { parseSource as parseJs } from "./engine/parse.ts";

/** Apply `patches` in order to the tree at `root` (see PatchEngine.runPatches), with a fresh engine unless one is given. */
export function runPatches(root: string, patches: Patch[], engine = new PatchEngine()): PatchRunOutcome {
  return engine.runPatches(root, patches);
}
