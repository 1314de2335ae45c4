/**
 * Settings that decide how the server reads statement text or resolves names. The facts are
 * read with the values the engine checks at login (standard_conforming_strings on, UTF8, the
 * policy's search path); a statement that changes one of them mid-session would make the server
 * read later text or names differently from the facts, so it is refused by a built-in rule
 * before any policy rule.
 *
 *   standard_conforming_strings  scan.l: whether `\` escapes in '…' (a `'\''` hides a statement)
 *   backslash_quote              scan.l: whether `\'` is accepted in string literals
 *   client_encoding              bytes → characters of every later statement
 *   search_path                  which schema an unqualified name resolves to
 */

/** The reserved rule name of the built-in refusal (no policy rule can take this name: it has a colon). */
export const PARSER_SETTINGS_RULE = 'built-in:parser-settings';

/** Unknown which setting: a computed name, a write to pg_settings, SQL computed at run time. */
export const ANY_SETTING = '*';

const SCS_ON = new Set(['on', 'true', 'yes', '1', 't', 'tr', 'tru', 'y', 'ye']);

/**
 * Each parser setting, and the values that leave it as the facts assume (setting it to one of
 * them changes nothing); `null`: every change is refused.
 */
const SETTINGS: ReadonlyMap<string, ((value: string) => boolean) | null> = new Map([
  ['standard_conforming_strings', (v: string) => SCS_ON.has(v.toLowerCase())],
  // encnames.c clean_encoding_name: case and non-alphanumerics are ignored
  ['client_encoding', (v: string) => ['utf8', 'unicode'].includes(v.toLowerCase().replace(/[^a-z0-9]/g, ''))],
  ['backslash_quote', null],
  ['search_path', null],
]);

export function isParserSetting(name: string): boolean {
  return SETTINGS.has(name.toLowerCase());
}

/**
 * Whether setting `name` to `value` (undefined: not a plain literal, or a RESET/DEFAULT) may
 * change how text is read. `name` is compared as the server does, ignoring case.
 */
export function changesParserSetting(name: string, value: string | undefined): boolean {
  const key = name.toLowerCase();
  if (!SETTINGS.has(key)) return false;
  const unchanged = SETTINGS.get(key);
  return !(unchanged && value !== undefined && unchanged(value));
}

export const PARSER_SETTING_NAMES: readonly string[] = [...SETTINGS.keys()];
