import type { PolicyTestResponse } from '../api/types.js';
import type { MaskingConfig } from '../masking/types.js';
import { wouldMask } from '../masking/would-mask.js';
import type { PolicyDecision } from '../policy/types.js';

/** A policy decision as `POST /api/v1/policy/test` answers it, and as a review shows what it holds. */
export function toPolicyTestResponse(decision: PolicyDecision, groups: string[], masking: MaskingConfig | undefined): PolicyTestResponse {
  return {
    decision: decision.decision,
    rule: decision.rule,
    reason: decision.reason,
    unparsed: decision.unparsed,
    groups,
    detect: wouldMask(masking, groups, []).detect,
    statements: decision.statements.map((s) => ({
      kind: s.kind,
      text: s.text,
      nested: s.nested,
      tables: s.tables,
      writes: s.writes,
      columns: s.columns,
      functions: s.functions,
      features: s.features,
      whereAbsent: s.whereAbsent,
      decision: s.decision,
      rule: s.rule,
      reason: s.reason,
      wouldMask: wouldMask(masking, groups, s.columns).columns,
    })),
  };
}
