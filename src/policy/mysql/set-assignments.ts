import { changedMysqlSetting, clientCharsetKeepsReading } from './parser-settings.js';
import type { MysqlToken } from './lexer.js';

/** What the MySQL facts cannot understand: the statement is unparsed. */
export class MysqlFactsError extends Error {}

/** Identifiers compare without case here (see the file comment); a backtick-quoted name arrives decoded or with `` doubled. */
export function foldName(name: string): string {
  return name.replace(/``/g, '`').toLowerCase();
}

/**
 * `SET` assignments' parser settings, from tokens: `[GLOBAL|SESSION|LOCAL|PERSIST|PERSIST_ONLY]
 * name = value`, `@@[scope.]name = value`, `NAMES …`, `CHARACTER SET …`, `CHARSET …`, split at
 * top-level commas. A value is known only when it is one string, word or quoted name.
 */
export function setAssignments(tokens: readonly MysqlToken[]): string[] {
  const out: string[] = [];
  const parts = splitTopLevel(tokens.slice(1));
  for (const part of parts) {
    let i = 0;
    const word = (k: number) => (part[k]?.type === 'word' ? part[k]!.value : undefined);
    if (['GLOBAL', 'SESSION', 'LOCAL', 'PERSIST', 'PERSIST_ONLY'].includes(word(0) ?? '')) i = 1;
    const first = part[i];
    if (!first) continue;
    if (word(i) === 'NAMES' || word(i) === 'CHARSET' || (word(i) === 'CHARACTER' && word(i + 1) === 'SET')) {
      const valueAt = i + (word(i) === 'CHARACTER' ? 2 : 1);
      const value = singleValue(part.slice(valueAt, word(i) === 'NAMES' ? nextWord(part, valueAt, 'COLLATE') : part.length));
      if (value === undefined || !clientCharsetKeepsReading(value)) out.push('character_set_client');
      continue;
    }
    let name: string | undefined;
    if (first.type === 'var' && first.text.startsWith('@@')) {
      name = first.value.replace(/^(global|session|local|persist|persist_only)\./i, '');
      // @@`session`.`sql_mode`
      while (part[i + 1]?.text === '.' && part[i + 2]) {
        name = part[i + 2]!.type === 'ident' ? part[i + 2]!.value : part[i + 2]!.text;
        i += 2;
      }
    } else if (first.type === 'word' || first.type === 'ident') {
      name = first.type === 'word' ? first.text : first.value;
    }
    if (name === undefined) continue;
    const eq = part[i + 1];
    const valueTokens = eq?.text === '=' ? part.slice(i + 2) : eq?.text === ':' && part[i + 2]?.text === '=' ? part.slice(i + 3) : undefined;
    const value = valueTokens ? singleValue(valueTokens) : undefined;
    const setting = changedMysqlSetting(name, value);
    if (setting) out.push(setting);
  }
  return out;
}


function nextWord(tokens: readonly MysqlToken[], from: number, word: string): number {
  for (let k = from; k < tokens.length; k++) if (tokens[k]!.type === 'word' && tokens[k]!.value === word) return k;
  return tokens.length;
}

/** The value of a one-token string, word or quoted name; undefined for anything else (DEFAULT, expressions). */
function singleValue(tokens: readonly MysqlToken[]): string | undefined {
  if (tokens.length !== 1) return undefined;
  const t = tokens[0]!;
  if (t.type === 'string' || t.type === 'ident') return t.value;
  if (t.type === 'word' && t.value !== 'DEFAULT' && !/^[0-9]/.test(t.text)) return t.text;
  return undefined;
}

/** Splits tokens at commas outside parentheses. */
export function splitTopLevel(tokens: readonly MysqlToken[]): MysqlToken[][] {
  const parts: MysqlToken[][] = [[]];
  let depth = 0;
  for (const t of tokens) {
    if (t.type === 'op' && t.text === '(') depth++;
    if (t.type === 'op' && t.text === ')') depth--;
    if (depth === 0 && t.type === 'op' && t.text === ',') {
      parts.push([]);
      continue;
    }
    parts[parts.length - 1]!.push(t);
  }
  return parts;
}

/** The upper-cased word at `k`, or undefined when the token there is not a word. */
export function wordAt(tokens: readonly MysqlToken[], k: number): string | undefined {
  const t = tokens[k];
  return t?.type === 'word' ? t.value : undefined;
}
