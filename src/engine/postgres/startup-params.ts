/**
 * Checks a client's StartupMessage parameters against the session and builds the parameters
 * sent upstream (PostgreSQL docs, "Message Formats" → StartupMessage; "Connection Settings";
 * `options` follows the server's command-line syntax, see postgres(1) and libpq's `options`).
 */

/** A refusal the engine reports to the client as FATAL. */
export interface StartupRefusal {
  code: string;
  message: string;
  hint?: string;
}

export type StartupCheck =
  | { ok: true; upstreamParams: Record<string, string>; unsupportedExtensions: string[] }
  | { ok: false; refusal: StartupRefusal };

/** Settings that change who the session acts as; never accepted from the local client. */
const IDENTITY_SETTINGS = new Set(['role', 'session_authorization']);

const normalizeSettingName = (name: string): string => name.toLowerCase().replace(/-/g, '_');

/** Encoding names as the server compares them (pg_char_to_encoding: only letters and digits count, case ignored; asyncpg sends 'utf-8' quoted). */
const UTF8_NAMES = new Set(['utf8', 'unicode']);
const encodingName = (value: string): string => value.replace(/[^a-z0-9]/gi, '').toLowerCase();

/**
 * Settings whose values would make the policy read statements differently from the server:
 * the policy parses UTF-8 with standard-conforming strings and the connection's configured
 * search path. Returns why a value is refused, or undefined when it is fine.
 */
function parserSettingRefusal(name: string, value: string): string | undefined {
  switch (name) {
    case 'client_encoding':
      return UTF8_NAMES.has(encodingName(value)) ? undefined : `client_encoding must be UTF8 through the gateway, not "${value.slice(0, 40)}"`;
    case 'standard_conforming_strings':
      return ['on', 'true', 'yes', '1'].includes(value.trim().toLowerCase()) ? undefined : 'standard_conforming_strings must stay on through the gateway';
    case 'search_path':
      return 'search_path cannot be set at connection start: the policy resolves names against the connection’s configured search path';
    default:
      return undefined;
  }
}

/** Splits an `options` value like the server does: whitespace separates, backslash escapes. */
export function splitOptions(options: string): string[] {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  for (let i = 0; i < options.length; i++) {
    const ch = options[i]!;
    if (ch === '\\' && i + 1 < options.length) {
      current += options[++i]!;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else {
      current += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(current);
  return words;
}

/**
 * The setting names an `options` string sets (`-c name=value`, `-cname=value`,
 * `--name=value`), or a reason when it uses any other server switch.
 */
export function settingsInOptions(options: string): { names: string[]; values: string[] } | { error: string } {
  const words = splitOptions(options);
  const names: string[] = [];
  const values: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    let assignment: string | undefined;
    if (word === '-c') assignment = words[++i];
    else if (word.startsWith('--')) assignment = word.slice(2);
    else if (word.startsWith('-c')) assignment = word.slice(2);
    else return { error: `only "-c name=value" settings are allowed in options, not "${word.slice(0, 40)}"` };
    if (assignment === undefined || !assignment.includes('=') || assignment.startsWith('=')) {
      return { error: `malformed setting in options: "${(assignment ?? word).slice(0, 40)}"` };
    }
    names.push(normalizeSettingName(assignment.slice(0, assignment.indexOf('='))));
    values.push(assignment.slice(assignment.indexOf('=') + 1));
  }
  return { names, values };
}

const FALSY = new Set(['0', 'false', 'off', 'no']);

/**
 * Checks the client's startup parameters: user and database must be the session's local
 * names, no replication, nothing that changes the role. Returns the parameters to send
 * upstream, with the target's real user and database.
 */
export function checkStartupParams(
  params: Record<string, string>,
  expected: { localUser: string; database: string; connection: string },
  target: { user: string; database: string },
): StartupCheck {
  const user = params['user'];
  if (user === undefined || user === '') {
    return { ok: false, refusal: { code: '28000', message: 'no PostgreSQL user name specified in startup packet' } };
  }
  if (user !== expected.localUser) {
    return {
      ok: false,
      refusal: {
        code: '28000',
        message: `hoop: user "${user}" is not the user of this session`,
        hint: `Connect as user "${expected.localUser}" (hoopctl sets PGUSER for you).`,
      },
    };
  }
  const database = params['database'] || user;
  if (database !== expected.database) {
    return {
      ok: false,
      refusal: {
        code: '3D000',
        message: `hoop: database "${database}" is not the database of this session`,
        hint: `This session for connection "${expected.connection}" serves database "${expected.database}".`,
      },
    };
  }
  const upstreamParams: Record<string, string> = {};
  const unsupportedExtensions: string[] = [];
  for (const [name, value] of Object.entries(params)) {
    if (name === 'user' || name === 'database') continue;
    if (name === 'replication') {
      if (FALSY.has(value.toLowerCase())) continue;
      return {
        ok: false,
        refusal: { code: '28000', message: 'hoop: replication connections are not allowed through the gateway' },
      };
    }
    if (name.startsWith('_pq_.')) {
      unsupportedExtensions.push(name);
      continue;
    }
    if (IDENTITY_SETTINGS.has(normalizeSettingName(name))) {
      return { ok: false, refusal: { code: '42501', message: `hoop: setting "${name}" at connection start is not allowed` } };
    }
    const parserRefusal = parserSettingRefusal(normalizeSettingName(name), value);
    if (parserRefusal !== undefined) return { ok: false, refusal: { code: '42501', message: `hoop: ${parserRefusal}` } };
    if (name === 'options') {
      const parsed = settingsInOptions(value);
      if ('error' in parsed) return { ok: false, refusal: { code: '42501', message: `hoop: ${parsed.error}` } };
      const forbidden = parsed.names.find((n) => IDENTITY_SETTINGS.has(n));
      if (forbidden !== undefined) {
        return { ok: false, refusal: { code: '42501', message: `hoop: setting "${forbidden}" in options is not allowed` } };
      }
      for (let i = 0; i < parsed.names.length; i++) {
        const refusal = parserSettingRefusal(parsed.names[i]!, parsed.values[i]!);
        if (refusal !== undefined) return { ok: false, refusal: { code: '42501', message: `hoop: ${refusal}` } };
      }
    }
    upstreamParams[name] = value;
  }
  return { ok: true, upstreamParams: { user: target.user, database: target.database, ...upstreamParams }, unsupportedExtensions };
}
