/**
 * The server settings that decide how statement text is read (PostgreSQL docs, "String
 * Constants", "Lexical Structure", "Character Set Support"; the server reports each in a
 * ParameterStatus message when it changes, before its next ReadyForQuery): the policy parses
 * as the server does only while they keep the values the gateway checked at login.
 *
 *   standard_conforming_strings  must be on: with it off, '\'' does not end a string, so one
 *                                statement can hide another inside what looks like a literal
 *   client_encoding              must be UTF8: other encodings (SJIS, BIG5, GBK) can swallow a
 *                                backslash into a multibyte character
 *   search_path                  must stay what it was at login: names resolve through it
 *                                (reported by PostgreSQL 18 and later)
 *
 * Changing them by statement is refused before any rule (the policy facts name those
 * statements); what changes them out of sight (a function calling set_config) is caught here,
 * from the server's own report, and ends the connection.
 */

/** Why the server's reported value cannot be followed, or undefined when it can. */
export function parserSettingProblem(name: string, value: string, atLogin: ReadonlyMap<string, string>): string | undefined {
  switch (name) {
    case 'standard_conforming_strings':
      return value === 'on' ? undefined : `standard_conforming_strings is "${value}"; the gateway reads statements with it on`;
    case 'client_encoding':
      return value.toUpperCase() === 'UTF8' ? undefined : `client_encoding is "${value}"; the gateway reads statements as UTF8`;
    case 'search_path': {
      const initial = atLogin.get('search_path');
      return initial === undefined || initial === value ? undefined : `search_path changed from "${initial}" to "${value}"; the policy resolves names as at login`;
    }
    default:
      return undefined;
  }
}

/** The first setting among a login's ParameterStatus values that the gateway cannot follow. */
export function loginSettingsProblem(parameters: ReadonlyMap<string, string>): string | undefined {
  for (const [name, value] of parameters) {
    const problem = parserSettingProblem(name, value, parameters);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/**
 * True when `sql` could be read differently under other values of the settings above: it holds
 * a backslash or a byte outside ASCII. Pure-ASCII text without a backslash reads the same under
 * every standard_conforming_strings and every client encoding the server accepts.
 */
export function dependsOnParserSettings(sql: string): boolean {
  for (let i = 0; i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    if (c === 0x5c /* \ */ || c > 0x7f) return true;
  }
  return false;
}
