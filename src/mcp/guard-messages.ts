/**
 * What the gateway's guard tells a database client, read back into fields an agent can act on.
 * The engine speaks in the client's own protocol (SQLSTATE 42501 and a `hoop: …` message, a
 * notice while a statement is held); these patterns follow the texts in
 * `engine/postgres/statement-guard.ts`, which every engine shares.
 */

export interface GuardRefusal {
  rule: string | null;
  reason: string;
  reviewId: string | null;
}

const WHO = String.raw`(?:rule "(?<rule>[^"]+)"|[^():]+?)`;

const REFUSALS: readonly RegExp[] = [
  new RegExp(String.raw`^hoop: blocked by ${WHO}: (?<reason>.*)$`, 's'),
  new RegExp(String.raw`^hoop: statement needs approval \(${WHO}\): (?<reason>.*)$`, 's'),
  /^hoop: statement rejected by (?<by>.+?) \(review (?<review>[^)\s]+)\): (?<reason>.*)$/s,
  /^hoop: review (?<review>\S+) (?<reason>(?:timed out|was withdrawn).*)$/s,
];

const HELD = new RegExp(String.raw`^hoop: statement held for review (?<review>\S+) \(${WHO}\): (?<reason>.*)$`, 's');

/** The rule, reason and review of a refusal the guard raised; undefined for any other error. */
export function readGuardRefusal(message: string): GuardRefusal | undefined {
  for (const pattern of REFUSALS) {
    const match = pattern.exec(message);
    if (!match?.groups) continue;
    const { rule, reason, review, by } = match.groups;
    return {
      rule: rule ?? null,
      reason: by !== undefined ? `rejected by ${by}: ${reason}` : reason!,
      reviewId: review ?? null,
    };
  }
  return undefined;
}

/** The review id, rule and reason of a "statement held for review" notice; undefined for other notices. */
export function readHeldNotice(message: string): { reviewId: string; rule: string | null; reason: string } | undefined {
  const match = HELD.exec(message);
  if (!match?.groups) return undefined;
  return { reviewId: match.groups.review!, rule: match.groups.rule ?? null, reason: match.groups.reason! };
}
