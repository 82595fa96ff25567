// Parsing and the views patches see: one text -> one ts-morph SourceFile (by extension, no
// type-check), a file view (VerifyFile), and a whole-tree view (TreeView).
import { readFileSync } from "node:fs";
import path from "node:path";
import { Node, Project, ScriptKind, type SourceFile, SyntaxKind, type ts } from "ts-morph";
import type { TreeView, VerifyFile } from "../../../patches/define-patch.ts";
import { listFiles } from "../../lib/hash.ts";

/** How a source file is parsed, by its extension (.tsx TSX, .ts TS, .jsx JSX, anything else JS). */
export function scriptKindOf(filePath: string): ScriptKind {
  if (filePath.endsWith(".tsx")) return ScriptKind.TSX;
  if (filePath.endsWith(".ts") || filePath.endsWith(".mts") || filePath.endsWith(".cts")) return ScriptKind.TS;
  if (filePath.endsWith(".jsx")) return ScriptKind.JSX;
  return ScriptKind.JS;
}

/**
 * Parse source text into a SourceFile of its own project (locating only: allowJs, no lib, no
 * resolution). One project per file: a patch's `getSymbol()` builds a type checker over its
 * project, which in a project shared by a whole tree (or by every ref of a drift run) is rebuilt
 * over all of them after each new file; and a file nobody holds any more is simply collected.
 */
export function parseSource(filePath: string, text: string): SourceFile {
  const project = new Project({
    useInMemoryFileSystem: true,
    skipAddingFilesFromTsConfig: true,
    skipFileDependencyResolution: true,
    compilerOptions: { allowJs: true, noLib: true, noResolve: true },
  });
  return project.createSourceFile(`/${filePath}`, text, { scriptKind: scriptKindOf(filePath) });
}

/** How a view gets the AST of (path, text): the engine's cache, or a parse of its own. */
export type Parse = (filePath: string, text: string) => SourceFile;

export function verifyView(filePath: string, text: string, parse: Parse = parseSource): VerifyFile {
  let ast: SourceFile | undefined;
  return {
    path: filePath,
    text,
    get ast() {
      return (ast ??= parse(filePath, text));
    },
  };
}

/** Where a client patch's whole-tree check looks (TreeView.clientFiles). */
const CLIENT_SOURCES = "client/src/";

const OUR_RUNTIME_HEADER = /^(?:"use strict";\s*)?(?:\/\/|\/\*\*?)\s*\[patch:[a-z0-9-]+\]/;

/**
 * The tree at `root` as patches see it: `overlay` holds texts changed in memory (by earlier
 * patches), `added` the files patches add. Each file is read and parsed at most once per view.
 */
export function treeView(root: string, opts: { overlay?: Map<string, string>; added?: Iterable<string>; parse?: Parse } = {}): TreeView {
  const overlay = opts.overlay ?? new Map<string, string>();
  const added = new Set(opts.added ?? []);
  return makeTreeView([...listFiles(root), ...added], (f) => overlay.get(f) ?? readFileSync(path.join(root, f), "utf8"), added, opts.parse);
}

/** A tree held in memory (path -> text), for tests of whole-tree checks. */
export function memoryTreeView(files: Record<string, string>, added: string[] = []): TreeView {
  return makeTreeView(Object.keys(files), (f) => files[f], new Set(added));
}

function makeTreeView(paths: string[], read: (f: string) => string, added: Set<string>, parse?: Parse): TreeView {
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
      if (!v) views.set(f, (v = verifyView(f, text(f), parse)));
      return v;
    },
    // Declared additions, and our runtime files in a tree built before (they open with a [patch:<id>] comment).
    isAdded: (f) => added.has(f) || OUR_RUNTIME_HEADER.test(text(f)),
  };
}

// ts-morph's getDescendantsOfKind walks the tree with nested generators, each node passing through
// one `yield*` per level above it: on a deep TSX page that is most of what a client patch's locators
// cost (a drift run spent ~5 s there). The same walk, in the same order (the node's children as
// ts-morph lists them, then each child's subtree by forEachChild, pre-order), without generators.
// The syntax-node kinds ts-morph itself walks by forEachChild, and string literals (below), take
// this path; any other search (other tokens, from a SyntaxList) goes to ts-morph's own.
type WalkedNode = {
  compilerNode: ts.Node;
  _getCompilerForEachChildren(): ts.Node[];
  _getNodeFromCompilerNode(n: ts.Node): unknown;
};
const nodeProto = Node.prototype as unknown as { getDescendantsOfKind(this: WalkedNode, kind: SyntaxKind): unknown[] };
const ownWalk = nodeProto.getDescendantsOfKind;
// String literals are tokens, which ts-morph finds by materialising every token of the file
// (getChildren, the scanner, and the garbage of it: ~1 s of a drift run, for the patches that read
// SQL literals); forEachChild reaches each of them too, as the literal of its parent. It skips only
// JSDoc, where a SQL string never is.
const LITERALS = new Set([SyntaxKind.StringLiteral, SyntaxKind.NoSubstitutionTemplateLiteral]);
const byForEachChild = (k: SyntaxKind, searching: SyntaxKind) =>
  ((searching >= SyntaxKind.FirstNode && searching < SyntaxKind.FirstJSDocNode) || LITERALS.has(searching)) && k !== SyntaxKind.SyntaxList;
nodeProto.getDescendantsOfKind = function (this: WalkedNode, kind: SyntaxKind): unknown[] {
  if (!byForEachChild(this.compilerNode.kind, kind)) return ownWalk.call(this, kind);
  const found: ts.Node[] = [];
  const visit = (n: ts.Node): undefined => {
    if (n.kind === kind) found.push(n);
    n.forEachChild(visit);
    return undefined;
  };
  for (const child of this._getCompilerForEachChildren()) {
    if (child.kind === kind) found.push(child);
    if (byForEachChild(child.kind, kind)) child.forEachChild(visit);
    else return ownWalk.call(this, kind); // not a shape this walk covers: ts-morph's own, from the start
  }
  return found.map((n) => this._getNodeFromCompilerNode(n));
};
