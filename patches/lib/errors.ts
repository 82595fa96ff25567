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

/**
 * A line of the text a patch looked at (after the patches before it), as data: the engine renders
 * it with upstream's line through the earlier patches' maps. `text`, when given, is the code there
 * (a one-line frame, `line N: text`). As a string (outside a finding) it is that text without upstream's line.
 */
export class At {
  constructor(
    readonly line: number,
    readonly text?: string,
  ) {}

  render(toUpstream?: (line: number) => number | null): string {
    const ref = lineRef(this.line, toUpstream?.(this.line));
    return this.text === undefined ? ref : `${ref}: ${this.text}`;
  }

  toString(): string {
    return this.render();
  }
}

/**
 * What a patch says it found (a verify problem, a locator's detail): text, with the lines it names
 * kept as data (At) for the engine to render once with upstream's line (renderFinding); a plain
 * string when it names no line. Made with the `finding` tag. As a string, it renders without upstream's line.
 */
export type Finding = string | Found;

export class Found {
  constructor(readonly parts: readonly (string | At)[]) {}

  toString(): string {
    return renderFinding(this);
  }
}

/** A Finding (e.g. the "why not" a shape check returns instead of the node it looked for). */
export function isFinding(x: unknown): x is Finding {
  return typeof x === "string" || x instanceof Found;
}

/** finding`… ${at(node)} …`: the At values (and those of a nested Found) stay data; anything else becomes text. */
export function finding(strings: TemplateStringsArray, ...values: unknown[]): Found {
  const parts: (string | At)[] = [strings[0]];
  values.forEach((v, i) => {
    if (v instanceof At) parts.push(v);
    else if (v instanceof Found) parts.push(...v.parts);
    else parts.push(String(v));
    parts.push(strings[i + 1]);
  });
  return new Found(parts.filter((p) => p !== ""));
}

/** The one place a Finding becomes text: each line it names with upstream's line when `toUpstream` knows it. */
export function renderFinding(f: Finding, toUpstream?: (line: number) => number | null): string {
  return typeof f === "string" ? f : f.parts.map((p) => (typeof p === "string" ? p : p.render(toUpstream))).join("");
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
    /** Why, and where (its lines as data: see Finding). */
    readonly detail: Finding,
    /** The nearest candidate, as data, so the engine can name its upstream line without reading the message. */
    readonly nearest?: Candidate,
  ) {
    super(renderProblem(targetProblem(patchId, file, expected, found, detail, nearest)));
    this.name = "PatchTargetError";
  }

  /** The error as a finding, `[patch] file: …` (e.g. a verify reporting a locator's miss), its lines as data. */
  finding(): Found {
    return finding`[${this.patchId}] ${this.file}: ${targetFinding(this.expected, this.found, this.detail, this.nearest)}`;
  }

  /** The problem, with upstream's lines (the nearest candidate's, the detail's) when the engine knows them. */
  problem(toUpstream?: (line: number) => number | null): Problem {
    return targetProblem(this.patchId, this.file, this.expected, this.found, this.detail, this.nearest, toUpstream);
  }
}

/**
 * A patch found its target but the code around it drifted from what the patch can handle: the
 * finding says what and where (e.g. atomic-watchdog's pre-pass meeting a write).
 */
export class PatchDriftError extends Error {
  constructor(
    readonly patchId: string,
    readonly file: string,
    readonly finding: Finding,
  ) {
    super(renderProblem({ patch: patchId, file, message: renderFinding(finding) }));
    this.name = "PatchDriftError";
  }

  problem(toUpstream?: (line: number) => number | null): Problem {
    return { patch: this.patchId, file: this.file, message: renderFinding(this.finding, toUpstream) };
  }
}

function targetProblem(patch: string, file: string, expected: string, found: number, detail: Finding, nearest?: Candidate, toUpstream?: (line: number) => number | null): Problem {
  const upstreamLine = nearest && toUpstream ? toUpstream(nearest.line) : undefined;
  const message = renderFinding(targetFinding(expected, found, detail, nearest), toUpstream);
  return { patch, file, message, ...(nearest ? { line: nearest.line, ...(upstreamLine !== undefined ? { upstreamLine } : {}) } : {}) };
}

/** `expected 1 <shape> but found N. Nearest candidate: line L: <text>. <detail>`, its lines as data. */
function targetFinding(expected: string, found: number, detail: Finding, nearest?: Candidate): Found {
  const why = finding`${nearest ? finding`Nearest candidate: ${new At(nearest.line, nearest.text)}. ` : ""}${detail}`;
  return why.parts.length === 0 ? finding`expected 1 ${expected} but found ${found}.` : finding`expected 1 ${expected} but found ${found}. ${why}`;
}
