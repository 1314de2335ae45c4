/**
 * Identifier handling as PostgreSQL does it (src/backend/parser/scansup.c downcase_identifier):
 * unquoted names fold ASCII letters to lower case, double-quoted names keep case and `""` is a
 * quote. Facts and rules are compared in one canonical spelling: a part that reads the same
 * unquoted stays bare, any other part is double-quoted.
 */

const BARE_PART = /^[a-z_][a-z0-9_$]*$/;

/** The canonical spelling of one already-resolved identifier (as the parser returns it). */
export function canonicalPart(name: string): string {
  return BARE_PART.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

export function canonicalName(parts: readonly string[]): string {
  return parts.map(canonicalPart).join('.');
}

/**
 * Splits a dotted SQL name (`public."Customers".ssn`) into resolved parts, folding unquoted
 * parts; `*` is returned as a part of its own. Returns null on a malformed name.
 */
export function parseDottedName(text: string): string[] | null {
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    if (text[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) return null;
        if (text[i] === '"') {
          if (text[i + 1] === '"') { value += '"'; i += 2; continue; }
          i++;
          break;
        }
        value += text[i++];
      }
      if (value.length === 0) return null;
      parts.push(value);
    } else {
      let end = i;
      while (end < text.length && text[end] !== '.' && text[end] !== '"') end++;
      const raw = text.slice(i, end);
      if (raw !== '*' && !/^[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*$/.test(raw)) return null;
      parts.push(raw.replace(/[A-Z]/g, (c) => c.toLowerCase()));
      i = end;
    }
    if (i === text.length) return parts;
    if (text[i] !== '.') return null;
    i++;
  }
}

/** Splits a canonical fact name back into parts (canonical names always parse). */
export function splitCanonical(name: string): string[] {
  return parseDottedName(name) ?? [name];
}
