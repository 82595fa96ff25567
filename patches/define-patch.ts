// The contract every patch in patches/ follows: one file, one default export.
import type MagicString from "magic-string";
import type { SourceFile } from "ts-morph";
import type { Finding } from "./lib/errors.ts";

/** The one spelling, in prose (build log, drift matrix), of a part of a patch upstream already does (PatchFile.satisfied). */
export const ALREADY_SATISFIED = "already satisfied by upstream";

/** One upstream file as a patch sees it: the text, a parsed view to locate nodes, and an editor. */
export interface PatchFile {
  /** Posix path relative to the tree root, e.g. "server/routes/hooks.js". */
  readonly path: string;
  readonly text: string;
  /**
   * ts-morph view of `text` (parsed lazily, no type-check), parsed by extension: .tsx as TSX, .ts
   * as TS, .jsx as JSX, .js/.cjs/.mjs as JS. Locate only; never manipulate.
   */
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
  /** Every .js/.cjs/.mjs file of the tree outside client/ (posix relative paths, sorted); the client is clientFiles. */
  readonly jsFiles: string[];
  /**
   * Every .ts/.tsx/.js/.jsx file under client/src (sorted, __tests__ excluded): the client sources a
   * client patch's verifyTree checks (e.g. every page). Empty when the build has no client sources.
   */
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
  /**
   * Upstream files the patch edits; each must be touched, or the build fails. A patch whose targets
   * are all under client/ (e.g. "client/src/pages/Sessions.tsx") is a client patch: it runs with the
   * server patches, before the client is built from the patched sources, and is left out of a
   * --no-client build (see isClientPatch).
   */
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
  /**
   * Problems with the patched result of one target; [] means the patch has landed. A problem that
   * names a line is a Finding made with `finding` and `at`/`frame` (lib/find.ts), so the engine
   * can name upstream's line too.
   */
  verify(file: VerifyFile): Finding[];
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

/** Files under client/ belong to upstream's web client (built by the client step), not to the server. */
export const isClientFile = (file: string): boolean => file.startsWith("client/");

/** A patch of the client's sources: every target (and optional target) is under client/. */
export const isClientPatch = (patch: Patch): boolean => {
  const files = [...patch.targets, ...(patch.optionalTargets ?? [])];
  return files.length > 0 && files.every(isClientFile);
};

/**
 * The patch as it applies to a tree without client sources (--no-client, or a generated tree, which
 * ships client/dist only): null for a client patch, else the patch with its client targets dropped.
 */
export const withoutClientTargets = (patch: Patch): Patch | null =>
  isClientPatch(patch) ? null : { ...patch, targets: patch.targets.filter((f) => !isClientFile(f)), optionalTargets: patch.optionalTargets?.filter((f) => !isClientFile(f)) };

/** The comment placed at each edit so the output says which patch wrote what. */
export function marker(id: string): string {
  return `/* [patch:${id}] */`;
}
