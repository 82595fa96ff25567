/**
 * One problem with the tree, as data: made where it is found (a patch's locator, verify or gate,
 * the syntax checks, the file list), carried through patch and gate to build, drift and bump, and
 * rendered to text by renderProblem only.
 */
export interface Problem {
  /** The patch it belongs to; absent for the tree's own checks (syntax, file list). */
  patch?: string;
  /** The file in the tree, or what the problem is about when no one file ("whole tree", "file list"); absent for a review note. */
  file?: string;
  /** The check that found it, when not the patch's own ("syntax"). */
  check?: "syntax";
  /** Where: the line in the text the patch saw (after the patches before it), when it names one. */
  line?: number;
  /** That line in upstream's file, through the earlier patches' source maps; null when an earlier patch added it. */
  upstreamLine?: number | null;
  message: string;
}

/** The one place a Problem becomes text: `[patch] file: message` (`syntax: file: message` for a syntax check). */
export function renderProblem(p: Problem): string {
  return `${p.patch ? `[${p.patch}] ` : ""}${p.check ? `${p.check}: ` : ""}${p.file !== undefined ? `${p.file}: ` : ""}${p.message}`;
}

/** `line N`, with upstream's line when the patches before moved it (`line N (upstream line M)`). */
export function lineRef(line: number, upstreamLine?: number | null): string {
  if (upstreamLine === null) return `line ${line} (a line an earlier patch added)`;
  return upstreamLine === undefined || upstreamLine === line ? `line ${line}` : `line ${line} (upstream line ${upstreamLine})`;
}

/** The code a locator found closest to what it wanted: its line and its first line of text. */
export interface Candidate {
  line: number;
  text: string;
}

/** A patch could not find (exactly one of) the code it targets. Carries what a reviewer needs. */
export class PatchTargetError extends Error {
  constructor(
    readonly patchId: string,
    readonly file: string,
    readonly expected: string,
    readonly found: number,
    readonly detail: string,
    /** The nearest candidate, as data, so the engine can name its upstream line without reading the message. */
    readonly nearest?: Candidate,
  ) {
    super(renderProblem(targetProblem(patchId, file, expected, found, detail, nearest)));
    this.name = "PatchTargetError";
  }

  /** The problem, with the nearest candidate's upstream line when the engine knows it. */
  problem(upstreamLine?: number | null, detail = this.detail): Problem {
    return targetProblem(this.patchId, this.file, this.expected, this.found, detail, this.nearest, upstreamLine);
  }
}

function targetProblem(patch: string, file: string, expected: string, found: number, detail: string, nearest?: Candidate, upstreamLine?: number | null): Problem {
  const where = nearest ? `Nearest candidate: ${lineRef(nearest.line, upstreamLine)}: ${nearest.text}. ` : "";
  const message = `expected 1 ${expected} but found ${found}. ${where}${detail}`.trim();
  return { patch, file, message, ...(nearest ? { line: nearest.line, ...(upstreamLine !== undefined ? { upstreamLine } : {}) } : {}) };
}
