/**
 * Who someone is: the issuer that vouches for them and the subject it knows them by. A user
 * name (`preferred_username`, `azp`) is only a label: two issuers may both have an "alice", and
 * one person may be renamed. Ownership and "is this the same person" compare principals.
 */
export interface Principal {
  issuer: string;
  subject: string;
}

/** True when both name the same principal; a record without one (stored before identities were kept) matches nobody. */
export function samePrincipal(a: { issuer?: string | null; subject?: string | null } | null | undefined, b: Principal): boolean {
  return typeof a?.issuer === 'string' && typeof a.subject === 'string' && a.issuer === b.issuer && a.subject === b.subject;
}
