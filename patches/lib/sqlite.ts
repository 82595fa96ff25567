// SQLite connection sites and SQL text in any module, shared by busy-timeout and
// immediate-transactions, so their whole-tree gates agree on what "a connection of the tree" is.
import { type CallExpression, Node, type NewExpression, type SourceFile, SyntaxKind } from "ts-morph";
import type { PatchFile, VerifyFile } from "../define-patch.ts";
import { stringValue } from "./find.ts";

type AnyFile = PatchFile | VerifyFile;

/** "node:sqlite": a raw DatabaseSync (no transaction() helper); "better-sqlite3": it, or the compat wrapper (same API). */
export type Driver = "node:sqlite" | "better-sqlite3";

export interface ConnectionSite {
  node: NewExpression | CallExpression;
  /** 1-based line in the file. */
  line: number;
  /** `new Database(DB_PATH)` as written (first line). */
  text: string;
  driver: Driver;
  /** `":memory:"` (or `""`): a private in-memory database, no lock to share. */
  memory: boolean;
  /** `{ readonly: true }`: never writes, so never takes the write lock. */
  readonly: boolean;
  /** Our runtime wrappers around the site: withBusyTimeout / immediateByDefault. */
  wrappers: Set<string>;
}

const SQLITE_MODULE = /^(better-sqlite3|node:sqlite)$|(^|\/)compat-sqlite(\.js)?$/;
const RUNTIME_MODULE = /(^|\/)patch-runtime\/(busy-timeout|immediate-transactions)(\.js)?$/;

interface Binding {
  driver: Driver;
  /** better-sqlite3's export also works without `new`: `Database(path)`. */
  callable: boolean;
}

function bindingOf(module: string, member: string | null): Binding {
  if (module === "node:sqlite" || member === "DatabaseSync") return { driver: "node:sqlite", callable: false };
  return { driver: "better-sqlite3", callable: module === "better-sqlite3" };
}

/** `require("<sqlite module>")` (or `require(…).X`): the module and member, else null. */
function sqliteRequire(n: Node | undefined): { module: string; member: string | null } | null {
  if (!n) return null;
  if (Node.isPropertyAccessExpression(n)) {
    const inner = sqliteRequire(n.getExpression());
    return inner && inner.member === null ? { module: inner.module, member: n.getName() } : null;
  }
  if (!Node.isCallExpression(n) || n.getExpression().getText() !== "require") return null;
  const module = stringValue(n.getArguments()[0]);
  return module !== null && SQLITE_MODULE.test(module) ? { module, member: null } : null;
}

/** Every name a connection constructor is bound to here: requires, destructuring (aliased too), imports, assignments. */
function constructorBindings(file: AnyFile): Map<string, Binding> {
  const names = new Map<string, Binding>([
    ["Database", { driver: "better-sqlite3", callable: false }],
    ["DatabaseSync", { driver: "node:sqlite", callable: false }],
  ]);
  const bind = (nameNode: Node, req: { module: string; member: string | null }): void => {
    if (Node.isIdentifier(nameNode)) names.set(nameNode.getText(), bindingOf(req.module, req.member));
    else if (Node.isObjectBindingPattern(nameNode)) {
      for (const el of nameNode.getElements()) {
        const member = el.getPropertyNameNode()?.getText() ?? el.getName();
        names.set(el.getName(), bindingOf(req.module, member));
      }
    }
  };
  for (const d of file.ast.getDescendantsOfKind(SyntaxKind.VariableDeclaration)) {
    const req = sqliteRequire(d.getInitializer());
    if (req) bind(d.getNameNode(), req);
  }
  for (const b of file.ast.getDescendantsOfKind(SyntaxKind.BinaryExpression)) {
    const req = b.getOperatorToken().getKind() === SyntaxKind.EqualsToken ? sqliteRequire(b.getRight()) : null;
    if (req && Node.isIdentifier(b.getLeft())) bind(b.getLeft(), req);
  }
  for (const imp of file.ast.getImportDeclarations()) {
    const module = imp.getModuleSpecifierValue();
    if (!SQLITE_MODULE.test(module)) continue;
    const def = imp.getDefaultImport();
    if (def) names.set(def.getText(), bindingOf(module, null));
    for (const n of imp.getNamedImports()) names.set((n.getAliasNode() ?? n.getNameNode()).getText(), bindingOf(module, n.getName()));
  }
  return names;
}

/** `require("…/patch-runtime/<module>").<name>(…)` or a bare `<name>(…)`: the name, else null. */
export function runtimeWrapperName(n: Node | undefined): string | null {
  if (!n || !Node.isCallExpression(n)) return null;
  const callee = n.getExpression();
  if (Node.isIdentifier(callee)) return ["withBusyTimeout", "immediateByDefault"].includes(callee.getText()) ? callee.getText() : null;
  if (!Node.isPropertyAccessExpression(callee)) return null;
  const obj = callee.getExpression();
  if (!Node.isCallExpression(obj) || obj.getExpression().getText() !== "require" || !RUNTIME_MODULE.test(stringValue(obj.getArguments()[0]) ?? "")) return null;
  return callee.getName();
}

function wrappersAround(node: Node): Set<string> {
  const out = new Set<string>();
  let cur: Node = node;
  for (;;) {
    const parent = cur.getParent();
    if (parent && Node.isParenthesizedExpression(parent)) {
      cur = parent;
      continue;
    }
    const name = runtimeWrapperName(parent);
    if (!name || (parent as CallExpression).getArguments()[0] !== cur) return out;
    out.add(name);
    cur = parent!;
  }
}

/** The constructor's binding, when `callee` names a SQLite connection constructor. */
function calleeBinding(callee: Node, names: Map<string, Binding>): Binding | null {
  const direct = sqliteRequire(callee);
  if (direct) return direct.member === null && direct.module === "node:sqlite" ? null : bindingOf(direct.module, direct.member);
  if (Node.isParenthesizedExpression(callee)) return calleeBinding(callee.getExpression(), names);
  const last = Node.isPropertyAccessExpression(callee) ? callee.getName() : Node.isIdentifier(callee) ? callee.getText() : null;
  return last ? (names.get(last) ?? null) : null;
}

/**
 * Every place this file opens a SQLite connection: `new <constructor>(…)` for any name bound to
 * better-sqlite3, node:sqlite or the compat wrapper (aliases included), and better-sqlite3's
 * `Database(…)` / `require("better-sqlite3")(…)` called without `new`.
 */
export function connectionSites(file: AnyFile): ConnectionSite[] {
  // Several checks ask per file (discover, verify, verifyTree, reportTree): find once per parsed view.
  let found = siteCache.get(file.ast);
  if (!found) siteCache.set(file.ast, (found = findSites(file)));
  return found;
}

const siteCache = new WeakMap<object, ConnectionSite[]>();
const declCache = new WeakMap<object, Map<string, import("ts-morph").VariableDeclaration[]>>();

function findSites(file: AnyFile): ConnectionSite[] {
  if (!MAY_OPEN_CONNECTION.test(file.text)) return [];
  const names = constructorBindings(file);
  const sites: ConnectionSite[] = [];
  const callable = [...names.values()].some((b) => b.callable) || file.text.includes("better-sqlite3");
  const nodes: Node[] = [...file.ast.getDescendantsOfKind(SyntaxKind.NewExpression), ...(callable ? file.ast.getDescendantsOfKind(SyntaxKind.CallExpression) : [])];
  nodes.sort((a, b) => a.getStart() - b.getStart());
  for (const node of nodes) {
    let binding: Binding | null = null;
    if (Node.isNewExpression(node)) binding = calleeBinding(node.getExpression(), names);
    else if (Node.isCallExpression(node)) {
      const b = calleeBinding(node.getExpression(), names);
      binding = b?.callable ? b : null;
    }
    if (!binding) continue;
    const site = node as NewExpression | CallExpression;
    const args = site.getArguments();
    const first = stringValue(args[0]);
    const opts = args[1];
    const readonly = !!opts && Node.isObjectLiteralExpression(opts) && opts.getProperties().some((p) => Node.isPropertyAssignment(p) && p.getName() === "readonly" && p.getInitializer()?.getText() === "true");
    sites.push({
      node: site,
      line: site.getStartLineNumber(),
      text: site.getText().split("\n")[0],
      driver: binding.driver,
      memory: first === ":memory:" || first === "",
      readonly,
      wrappers: wrappersAround(site),
    });
  }
  return sites;
}

/**
 * Cheap text prefilter, a superset of connectionSites' hits: a connection needs a sqlite module
 * named in the file (require/import, `require("better-sqlite3")(…)`) or a default name `Database(`.
 */
export const MAY_OPEN_CONNECTION = /better-sqlite3|node:sqlite|compat-sqlite|\bDatabase(Sync)?\b\s*\(/;

/**
 * The SQL a `.exec(…)`/`.prepare(…)`/`.pragma(…)` argument holds: a string literal, a template
 * (each `${…}` as `?`), or an identifier bound to one by a `const` of the same file. With the node
 * whose text holds it (for edits), else null.
 */
export function sqlLiteral(file: AnyFile, arg: Node | undefined): Node | null {
  if (!arg) return null;
  if (Node.isStringLiteral(arg) || Node.isNoSubstitutionTemplateLiteral(arg) || Node.isTemplateExpression(arg)) return arg;
  if (!Node.isIdentifier(arg)) return null;
  let byName = declCache.get(file.ast);
  if (!byName) {
    byName = new Map();
    for (const d of file.ast.getDescendantsOfKind(SyntaxKind.VariableDeclaration)) byName.set(d.getName(), [...(byName.get(d.getName()) ?? []), d]);
    declCache.set(file.ast, byName);
  }
  const decls = byName.get(arg.getText()) ?? [];
  if (decls.length !== 1 || decls[0].getVariableStatement()?.getDeclarationKind() !== "const") return null;
  const init = decls[0].getInitializer();
  return init && (Node.isStringLiteral(init) || Node.isNoSubstitutionTemplateLiteral(init) || Node.isTemplateExpression(init)) ? init : null;
}

/** The text of a literal found by sqlLiteral, `${…}` replaced by `?`. */
export function sqlText(lit: Node): string {
  if (Node.isTemplateExpression(lit)) return [lit.getHead().getLiteralText(), ...lit.getTemplateSpans().map((s) => s.getLiteral().getLiteralText())].join("?");
  return (lit as import("ts-morph").StringLiteral).getLiteralValue();
}

// ── Raw BEGIN statements in SQL strings (a small SQL tokenizer) ─────────────

export interface BeginStatement {
  /** The call running the SQL (`db.exec(…)` / `db.prepare(…)`). */
  call: CallExpression;
  /** Offset of `BEGIN` in the file. */
  at: number;
  /** 1-based line of `BEGIN` in the file. */
  line: number;
  /** The mode word and its offsets, when the statement names one. */
  mode: { word: "DEFERRED" | "IMMEDIATE" | "EXCLUSIVE"; start: number; end: number } | null;
}

/** A BEGIN that starts a deferred transaction (no mode, or DEFERRED): the read-to-write upgrade hazard. */
export function isDeferred(b: BeginStatement): boolean {
  return b.mode === null || b.mode.word === "DEFERRED";
}

/**
 * BEGIN statements inside string literals passed to `.exec(…)` / `.prepare(…)` calls, found with a
 * small SQL tokenizer (comments, quoted strings and `;` boundaries respected, so `-- BEGIN` or
 * `'BEGIN'` do not count). Template literals are scanned part by part around their `${…}`; an
 * identifier argument is followed to its `const` string in the same file.
 */
export function beginStatements(file: AnyFile): BeginStatement[] {
  const out: BeginStatement[] = [];
  if (!/begin/i.test(file.text)) return out; // cheap: most files never spell it
  const sf: SourceFile = file.ast;
  for (const call of sf.getDescendantsOfKind(SyntaxKind.CallExpression)) {
    const callee = call.getExpression();
    if (!Node.isPropertyAccessExpression(callee) || !["exec", "prepare"].includes(callee.getName())) continue;
    const arg = sqlLiteral(file, call.getArguments()[0]); // a literal, or the const it names
    if (!arg) continue;
    const parts: { node: Node; open: number; close: number; startsStatement: boolean }[] = [];
    if (Node.isStringLiteral(arg) || Node.isNoSubstitutionTemplateLiteral(arg)) {
      parts.push({ node: arg, open: 1, close: 1, startsStatement: true });
    } else if (Node.isTemplateExpression(arg)) {
      parts.push({ node: arg.getHead(), open: 1, close: 2, startsStatement: true });
      for (const span of arg.getTemplateSpans()) {
        const lit = span.getLiteral();
        parts.push({ node: lit, open: 1, close: Node.isTemplateTail(lit) ? 1 : 2, startsStatement: false });
      }
    } else {
      continue;
    }
    for (const part of parts) {
      const text = part.node.getText();
      const raw = text.slice(part.open, text.length - part.close);
      const base = part.node.getStart() + part.open;
      for (const b of scanBegins(raw, part.startsStatement)) {
        out.push({
          call,
          at: base + b.at,
          line: sf.getLineAndColumnAtPos(base + b.at).line,
          mode: b.mode ? { word: b.mode.word, start: base + b.mode.start, end: base + b.mode.end } : null,
        });
      }
    }
  }
  return out;
}

type Mode = "DEFERRED" | "IMMEDIATE" | "EXCLUSIVE";

/** BEGIN keywords that start a statement in raw literal text (JS escapes like `\n` count as whitespace). */
function scanBegins(raw: string, startsStatement: boolean): { at: number; mode: { word: Mode; start: number; end: number } | null }[] {
  const found: { at: number; mode: { word: Mode; start: number; end: number } | null }[] = [];
  let i = 0;
  let atStart = startsStatement;
  const skipTrivia = (): void => {
    for (;;) {
      if (i < raw.length && /\s/.test(raw[i])) i++;
      else if (raw[i] === "\\" && /[nrtv]/.test(raw[i + 1] ?? "")) i += 2;
      else if (raw.startsWith("--", i)) {
        while (i < raw.length && raw[i] !== "\n" && !raw.startsWith("\\n", i)) i++;
      } else if (raw.startsWith("/*", i)) {
        const end = raw.indexOf("*/", i + 2);
        i = end < 0 ? raw.length : end + 2;
      } else return;
    }
  };
  const readWord = (): { word: string; start: number; end: number } => {
    const start = i;
    while (i < raw.length && /[A-Za-z0-9_]/.test(raw[i])) i++;
    return { word: raw.slice(start, i), start, end: i };
  };
  while (i < raw.length) {
    skipTrivia();
    if (i >= raw.length) break;
    const c = raw[i];
    if (c === ";") {
      atStart = true;
      i++;
    } else if (c === "'" || c === '"' || c === "`" || c === "[") {
      const close = c === "[" ? "]" : c;
      i++;
      while (i < raw.length && raw[i] !== close) i++;
      i++;
      atStart = false;
    } else if (/[A-Za-z_]/.test(c)) {
      const w = readWord();
      if (atStart && w.word.toUpperCase() === "BEGIN") {
        skipTrivia();
        const next = /[A-Za-z_]/.test(raw[i] ?? "") ? readWord() : null;
        const upper = next?.word.toUpperCase();
        const mode = upper === "DEFERRED" || upper === "IMMEDIATE" || upper === "EXCLUSIVE" ? { word: upper as Mode, start: next!.start, end: next!.end } : null;
        found.push({ at: w.start, mode });
      }
      atStart = false;
    } else {
      i += c === "\\" ? 2 : 1;
      atStart = false;
    }
  }
  return found;
}
