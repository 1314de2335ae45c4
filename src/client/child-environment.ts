/**
 * The environment a wrapped command (`hoopctl connect NAME -- CMD`) starts from. The command
 * gets the session's database variables and nothing that can mint a session of its own: a
 * child holding the user's gateway token could open an hour-long session and escape the time
 * box it was given.
 *
 * Removed always: every `HOOPCTL_*` variable (the bearer token, the gateway, the CA, the token
 * store), the machine-login secrets hoopctl reads (`AZURE_CLIENT_SECRET`,
 * `AZURE_FEDERATED_TOKEN_FILE`, client certificates, username/password), MSAL's variables, and
 * the CI runner's OIDC token endpoint (`ACTIONS_ID_TOKEN_REQUEST_*`), which mints the federated
 * token a workload login trades for a gateway token.
 *
 * With `isolate`, only a few harmless variables pass (PATH, locale, terminal, time zone, user
 * name, shell, temp dir) and HOME and the XDG directories point at an empty directory of its
 * own, so the child finds neither hoopctl's config and token files nor the desktop session's
 * keychain (D-Bus, SSH agent and runtime-dir variables are dropped). A process running as the
 * same OS user can still open those files and sockets by absolute path; only another OS user or
 * a container closes that.
 */

export type Environment = Readonly<Record<string, string | undefined>>;

const CREDENTIAL_VARIABLES: readonly RegExp[] = [
  /^HOOPCTL_/,
  /^AZURE_CLIENT_SECRET$/,
  /^AZURE_FEDERATED_TOKEN_FILE$/,
  /^AZURE_CLIENT_CERTIFICATE_(PATH|PASSWORD)$/,
  /^AZURE_CLIENT_SEND_CERTIFICATE_CHAIN$/,
  /^AZURE_USERNAME$/,
  /^AZURE_PASSWORD$/,
  /^MSAL_/,
  /^ACTIONS_ID_TOKEN_REQUEST_(TOKEN|URL)$/,
];

const ISOLATED_PASS: readonly RegExp[] = [
  /^PATH$/,
  /^LANG$/,
  /^LANGUAGE$/,
  /^LC_[A-Z_]+$/,
  /^TERM$/,
  /^COLORTERM$/,
  /^NO_COLOR$/,
  /^TZ$/,
  /^TMPDIR$/,
  /^USER$/,
  /^LOGNAME$/,
  /^SHELL$/,
  /^COLUMNS$/,
  /^LINES$/,
  /^SYSTEMROOT$/i,
];

/** Whether a variable can get a gateway credential (and so never reaches a wrapped command). */
export function isCredentialVariable(name: string): boolean {
  return CREDENTIAL_VARIABLES.some((pattern) => pattern.test(name));
}

export type ChildIsolation = { isolate: false } | { isolate: true; home: string };

/** `env` without credentials; with `isolate`, only the basics, and HOME/XDG_* in `home`. */
export function wrappedCommandEnvironment(env: Environment, isolation: ChildIsolation): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || isCredentialVariable(name)) continue;
    if (isolation.isolate && !ISOLATED_PASS.some((pattern) => pattern.test(name))) continue;
    out[name] = value;
  }
  if (isolation.isolate) {
    const { home } = isolation;
    Object.assign(out, {
      HOME: home,
      XDG_CONFIG_HOME: `${home}/.config`,
      XDG_CACHE_HOME: `${home}/.cache`,
      XDG_DATA_HOME: `${home}/.local/share`,
      XDG_STATE_HOME: `${home}/.local/state`,
    });
  }
  return out;
}
