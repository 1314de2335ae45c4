/**
 * The seam between an engine's upstream login and wherever the gateway's database secret
 * lives. An engine asks for the password on every upstream login (never once at start), so a
 * fresh Entra token or a rotated Key Vault secret is used by the next login while connections
 * already open keep running on theirs. Engine-neutral: PostgreSQL and MySQL logins call it alike.
 *
 *   engine login ──password()──▶ source ──(cached? no)──▶ env/file value | Entra token | Key Vault
 *   database refuses (28P01, 1045) ──refused(pw)──▶ source drops pw; the next password() reads again
 */

/** Where an upstream login gets its password. */
export interface PasswordSource {
  /** What the password is, for logs and messages (e.g. `azure-ad`, `keyvault:https://…`); never the secret. */
  readonly describe: string;
  /**
   * The password for the next login. Rejects with a HoopError (`credential_unavailable`, kind
   * `auth`) whose message may be shown to a database client: it never contains a secret.
   */
  password(): Promise<string>;
  /** The database refused `password`: forget it, so the next login reads it again. */
  refused(password: string): void;
}

/** A password fixed when the config was read (`env:NAME`). */
export function fixedPassword(value: string, describe = 'a fixed password'): PasswordSource {
  return { describe, password: async () => value, refused: () => undefined };
}

/** `target.password` as engines accept it: a plain string (tests, fixed secrets) or a source. */
export type PasswordInput = string | PasswordSource;

/** A source for either form. */
export function passwordSource(input: PasswordInput): PasswordSource {
  return typeof input === 'string' ? fixedPassword(input) : input;
}
