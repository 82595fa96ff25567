// The contract every patch in patches/ follows: one file, one default export.
import type MagicString from "magic-string";
import type { SourceFile } from "ts-morph";

/** One upstream file as a patch sees it: the text, a parsed view to locate nodes, and an editor. */
export interface PatchFile {
  /** Posix path relative to the tree root, e.g. "server/routes/hooks.js". */
  readonly path: string;
  readonly text: string;
  /** ts-morph view of `text` (parsed lazily, allowJs, no type-check). Locate only; never manipulate. */
  readonly ast: SourceFile;
  /** Edit through this (offsets are in `text`); the engine turns it into output and a source map. */
  readonly edit: MagicString;
  /**
   * Record that upstream already does one part of what the patch adds (e.g. "compat transaction()
   * begins IMMEDIATE"): the build reports `already satisfied by upstream: <what>` for it, and the
   * patch still adds the rest. verify and verifyTree still check the whole property.
   */
  satisfied(what: string): void;
}

/** What `verify` sees: the final text and its AST, read-only. */
export type VerifyFile = Omit<PatchFile, "edit" | "satisfied">;

/**
 * The whole tree as a whole-tree check sees it: every JS file, each parsed lazily (once per view).
 * Filter on `text(path)` before asking for `file(path).ast` to keep parsing cheap.
 */
export interface TreeView {
  /** Every .js/.cjs/.mjs file of the tree (posix relative paths, sorted). */
  readonly jsFiles: string[];
  /** Every .ts/.tsx/.js/.jsx under client/src (sorted, no __tests__): what a client patch's verifyTree reads. */
  readonly clientFiles: string[];
  text(path: string): string;
  file(path: string): VerifyFile;
  /** A file a patch added (our runtime code under server/patch-runtime/, opening with a `[patch:<id>]` comment), not upstream's. */
  isAdded(path: string): boolean;
}

export interface Patch {
  /** Kebab-case, equals the file name. */
  id: string;
  /** One line: what the patch does. */
  description: string;
  /** Why we carry it (the failure it prevents); a test rejects a patch without one. */
  why: string;
  /** When it can be dropped. */
  removeWhen: string;
  /**
   * Ids of earlier patches whose output this one edits. When one of them fails (or is skipped),
   * this patch is reported `skipped (needs <id>)` instead of failing on its missing anchors.
   */
  needs?: string[];
  /** Upstream files the patch edits; each must be touched, or the build fails. */
  targets: string[];
  /** Files edited when the upstream release has them (added upstream later); absent ones are reported, not failed. */
  optionalTargets?: string[];
  /** New files the patch adds to the tree (path -> content). Declared, so the gate allows them. */
  adds?: Record<string, string>;
  /**
   * Edits one target through `file.edit`. Pure: no I/O. Throws PatchTargetError (via the
   * finders in patches/lib/find.ts) when the shape it needs is missing or ambiguous.
   */
  apply(file: PatchFile): void;
  /** Problems with the patched result of one target; [] means the patch has landed. */
  verify(file: VerifyFile): string[];
  /** Optional lines the gate prints about what it checked (e.g. each connection site). */
  report?(file: VerifyFile): string[];
  /**
   * Further files this patch must edit, found in the tree (the output of the patches before it):
   * e.g. every module that opens a SQLite connection, not only the declared ones. Each is applied
   * and verified like a target; return only files whose `verify` fails (they need the patch).
   */
  discover?(tree: TreeView): string[];
  /**
   * The patch's property over the whole generated tree, not only its edits: problems as
   * `<file>:<line> …` ([] = holds everywhere). The gate runs it after every per-file verify.
   */
  verifyTree?(tree: TreeView): string[];
  /** Lines the gate prints about what verifyTree checked (files, sites, counts). */
  reportTree?(tree: TreeView): string[];
}

export function definePatch(patch: Patch): Patch {
  return patch;
}

/** The comment placed at each edit so the output says which patch wrote what. */
export function marker(id: string): string {
  return `/* [patch:${id}] */`;
}
