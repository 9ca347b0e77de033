// Finds the qualified name of the Python function around a position, for the
// commands run from the palette (code lenses pass the name themselves). A
// line scan by indentation is enough here: the server resolves the name with
// its tree-sitter index and reports a clear error if it does not exist.
import * as vscode from 'vscode';

const DEF = /^(\s*)(?:async\s+)?def\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(/;
const CLASS = /^(\s*)class\s+([A-Za-z_][A-Za-z0-9_]*)\b/;

interface Header {
  kind: 'def' | 'class';
  name: string;
  indent: number;
  line: number;
}

function headerAt(text: string, line: number): Header | undefined {
  const def = DEF.exec(text);
  if (def) {
    return { kind: 'def', name: def[2], indent: def[1].length, line };
  }
  const cls = CLASS.exec(text);
  if (cls) {
    return { kind: 'class', name: cls[2], indent: cls[1].length, line };
  }
  return undefined;
}

function indentOf(text: string): number {
  return text.length - text.trimStart().length;
}

/** Qualified name (e.g. `Stack.push`) of the innermost def enclosing `position`, if any. */
export function functionAt(document: vscode.TextDocument, position: vscode.Position): string | undefined {
  const chain: Header[] = [];
  // Lines at or above the cursor: a header encloses the cursor if its indent is
  // below the smallest indent seen so far among non-blank lines after it.
  let limit = Number.POSITIVE_INFINITY;
  for (let line = position.line; line >= 0; line--) {
    const text = document.lineAt(line).text;
    if (text.trim().length === 0 || text.trimStart().startsWith('#')) {
      continue;
    }
    const header = headerAt(text, line);
    if (header && (header.indent < limit || line === position.line)) {
      chain.unshift(header);
      limit = header.indent;
      if (limit === 0) {
        break;
      }
      continue;
    }
    limit = Math.min(limit, indentOf(text));
    if (limit === 0) {
      break;
    }
  }
  const innermostDef = chain.map((header) => header.kind).lastIndexOf('def');
  if (innermostDef < 0) {
    return undefined;
  }
  return chain
    .slice(0, innermostDef + 1)
    .map((header) => header.name)
    .join('.');
}

/** Qualified names of every def in the document, in order (for a quick pick). */
export function allFunctions(document: vscode.TextDocument): { name: string; line: number }[] {
  const result: { name: string; line: number }[] = [];
  for (let line = 0; line < document.lineCount; line++) {
    if (DEF.test(document.lineAt(line).text)) {
      const name = functionAt(document, new vscode.Position(line, 0));
      if (name) {
        result.push({ name, line });
      }
    }
  }
  return result;
}
