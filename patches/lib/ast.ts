// Small AST helpers the patches share (locating only; edits go through magic-string).
import path from "node:path";
import { noteAnchor } from "./anchors.ts";
import { type ArrowFunction, type FunctionDeclaration, type FunctionExpression, Node, type SourceFile, SyntaxKind, type VariableDeclaration } from "ts-morph";

export type FnLike = ArrowFunction | FunctionExpression;

export function isFnLike(n: Node | undefined): n is FnLike {
  return !!n && (Node.isArrowFunction(n) || Node.isFunctionExpression(n));
}

/** The module-level `function name(…) {…}`, if any. */
export function topLevelFunction(sf: SourceFile, name: string): FunctionDeclaration | undefined {
  const fn = sf.getStatements().find((s): s is FunctionDeclaration => Node.isFunctionDeclaration(s) && s.getName() === name);
  noteAnchor(fn);
  return fn;
}

/** Names declared at module level (functions, variables, destructured bindings). */
export function topLevelNames(sf: SourceFile): Set<string> {
  const names = new Set<string>();
  for (const st of sf.getStatements()) {
    if (Node.isFunctionDeclaration(st) && st.getName()) names.add(st.getName()!);
    if (Node.isVariableStatement(st)) {
      for (const d of st.getDeclarations()) {
        const n = d.getNameNode();
        if (Node.isIdentifier(n)) names.add(n.getText());
        else n.getDescendantsOfKind(SyntaxKind.BindingElement).forEach((b) => names.add(b.getName()));
      }
    }
  }
  return names;
}

/** Leading whitespace of the line that `pos` is on. */
export function indentAt(text: string, pos: number): string {
  const lineStart = text.lastIndexOf("\n", pos - 1) + 1;
  return /^[ \t]*/.exec(text.slice(lineStart))![0];
}

/** Leading whitespace of the line `node` starts on. */
export function indentOf(text: string, node: Node): string {
  return indentAt(text, node.getStart());
}

/** The relative module specifier by which `fromFile` imports `toFile` (posix tree paths; extension dropped), e.g. "./lib/coalesce". */
export function importSpecifier(fromFile: string, toFile: string): string {
  const rel = path.posix.relative(path.posix.dirname(fromFile), toFile).replace(/\.(tsx?|jsx?)$/, "");
  return rel.startsWith(".") ? rel : `./${rel}`;
}

/** The offset right after the file's last import declaration (0 when it has none): where an added import goes. */
export function afterImports(sf: SourceFile): number {
  const imports = sf.getImportDeclarations();
  return imports.length ? imports[imports.length - 1].getEnd() : 0;
}

/** The file's `const name = …` (at any depth), else its `function name(…)`: what a bare identifier names. */
export function localDeclaration(sf: SourceFile, name: string): VariableDeclaration | FunctionDeclaration | undefined {
  return sf.getDescendantsOfKind(SyntaxKind.VariableDeclaration).find((d) => d.getName() === name) ?? sf.getDescendantsOfKind(SyntaxKind.FunctionDeclaration).find((d) => d.getName() === name);
}

/** Whether `text` has `import { name } from "…/<moduleTail>"` (the single named import a patch adds). */
export function hasNamedImport(text: string, name: string, moduleTail: string): boolean {
  return new RegExp(`import\\s*\\{\\s*${name}\\s*\\}\\s*from\\s*["'][^"']*${moduleTail.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}["']`).test(text);
}
