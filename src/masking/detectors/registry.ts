/**
 * Every detector with the pre-check trigger it needs, and `findSpans`, which runs the ones a
 * value triggered and resolves overlaps (earliest start wins, then the longest, then the order
 * of `DETECTOR_NAMES`).
 */
import { DETECTOR_NAMES, type DetectorName, type Span } from '../types.js';
import { findAwsAccessKeys } from './aws-access-key.js';
import { findAzureConnectionStrings } from './azure-connection-string.js';
import { findAzureStorageKeys } from './azure-storage-key.js';
import { findCreditCards } from './credit-card.js';
import { findEmails } from './email.js';
import { findIbans } from './iban.js';
import { findJwts } from './jwt.js';
import { findPhones } from './phone.js';
import { findPrivateKeys } from './private-key.js';
import {
  TRIGGER_AT,
  TRIGGER_AWS,
  TRIGGER_BASE64_KEY,
  TRIGGER_DIGITS_13,
  TRIGGER_DIGITS_8,
  TRIGGER_IBAN,
  TRIGGER_JWT,
  TRIGGER_KEY_ASSIGNMENT,
  TRIGGER_PEM,
} from './triggers.js';
import { findUsSsns } from './us-ssn.js';

export interface Detector {
  name: DetectorName;
  /** Bit from `triggers.ts` that must be present for `find` to have a chance. */
  trigger: number;
  find(text: string): Span[];
}

export const DETECTORS: Readonly<Record<DetectorName, Detector>> = {
  email: { name: 'email', trigger: TRIGGER_AT, find: findEmails },
  credit_card: { name: 'credit_card', trigger: TRIGGER_DIGITS_13, find: findCreditCards },
  us_ssn: { name: 'us_ssn', trigger: TRIGGER_DIGITS_8, find: findUsSsns },
  iban: { name: 'iban', trigger: TRIGGER_IBAN, find: findIbans },
  phone: { name: 'phone', trigger: TRIGGER_DIGITS_8, find: findPhones },
  jwt: { name: 'jwt', trigger: TRIGGER_JWT, find: findJwts },
  private_key: { name: 'private_key', trigger: TRIGGER_PEM, find: findPrivateKeys },
  azure_storage_key: { name: 'azure_storage_key', trigger: TRIGGER_BASE64_KEY, find: findAzureStorageKeys },
  azure_connection_string: { name: 'azure_connection_string', trigger: TRIGGER_KEY_ASSIGNMENT, find: findAzureConnectionStrings },
  aws_access_key: { name: 'aws_access_key', trigger: TRIGGER_AWS, find: findAwsAccessKeys },
};

const PRIORITY: Readonly<Record<DetectorName, number>> = Object.fromEntries(DETECTOR_NAMES.map((name, i) => [name, i])) as Record<
  DetectorName,
  number
>;

/** Non-overlapping spans, sorted by start, of the given detectors whose trigger is in `triggers`. */
export function findSpans(text: string, detectors: readonly Detector[], triggers: number): Span[] {
  let all: Span[] | undefined;
  for (const detector of detectors) {
    if ((detector.trigger & triggers) === 0) continue;
    const found = detector.find(text);
    if (found.length > 0) all = all === undefined ? found : all.concat(found);
  }
  if (all === undefined) return [];
  if (all.length === 1) return all;
  all.sort((a, b) => a.start - b.start || b.end - a.end || PRIORITY[a.detector] - PRIORITY[b.detector]);
  const kept: Span[] = [];
  let reach = -1;
  for (const span of all) {
    if (span.start < reach) {
      // Overlaps a kept span: extend that span rather than leave a sensitive tail visible.
      const last = kept[kept.length - 1]!;
      if (span.end > last.end) {
        last.end = span.end;
        reach = span.end;
      }
      continue;
    }
    kept.push(span);
    reach = span.end;
  }
  return kept;
}

/** Detects with every detector, no pre-check: for tests and for `policy test` explanations. */
export function findAllSpans(text: string, names: readonly DetectorName[] = DETECTOR_NAMES): Span[] {
  return findSpans(
    text,
    names.map((name) => DETECTORS[name]),
    -1,
  );
}
