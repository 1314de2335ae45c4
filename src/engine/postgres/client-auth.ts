/**
 * The server side of the client's authentication (PostgreSQL docs, "SASL Authentication"):
 * the engine, not the database, checks the session's local password with SCRAM-SHA-256, and
 * nothing goes upstream before it succeeds.
 *
 *   engine → AuthenticationSASL [SCRAM-SHA-256]
 *   client → SASLInitialResponse (client-first)     engine → AuthenticationSASLContinue (server-first)
 *   client → SASLResponse (client-final)            engine → AuthenticationSASLFinal, AuthenticationOk
 */
import {
  FrontendCode,
  encodeBackendMessage,
  parseSASLInitialResponse,
  parseSASLResponse,
  type FrontendFramer,
} from '../../protocol/postgres/index.js';
import { SCRAM_SHA_256, ScramServer, type ScramVerifier } from '../../protocol/postgres/scram.js';
import { isHoopError } from '../../errors.js';
import type { FrameReader } from './frame-reader.js';
import type { FatalReport } from './wire.js';

export type ClientAuthResult = { ok: true } | { ok: false; report: FatalReport; reason: string };

/** Runs the SCRAM exchange; on success AuthenticationOk has been written. */
export async function authenticateClient(
  reader: FrameReader<FrontendFramer>,
  write: (bytes: Buffer) => void,
  verifier: ScramVerifier,
  user: string,
): Promise<ClientAuthResult> {
  const failed = (reason: string): ClientAuthResult => ({
    ok: false,
    reason,
    report: { code: '28P01', message: `password authentication failed for user "${user}"` },
  });
  const malformed = (reason: string): ClientAuthResult => ({
    ok: false,
    reason,
    report: { code: '08P01', message: `hoop: ${reason}` },
  });

  write(encodeBackendMessage({ type: 'Authentication', request: { kind: 'SASL', mechanisms: [SCRAM_SHA_256] } }));
  const scram = new ScramServer(verifier);
  try {
    const initial = await reader.next();
    if (initial.code !== FrontendCode.Password) return malformed(`expected SASL response, got message type 0x${initial.code.toString(16)}`);
    const { mechanism, data } = parseSASLInitialResponse(initial);
    if (mechanism !== SCRAM_SHA_256) {
      return { ok: false, reason: `mechanism ${mechanism}`, report: { code: '28000', message: 'client selected an invalid SASL authentication mechanism' } };
    }
    if (data === null) return malformed('SASLInitialResponse carries no client-first-message');
    write(encodeBackendMessage({ type: 'Authentication', request: { kind: 'SASLContinue', data: scram.serverFirstMessage(data) } }));

    const response = await reader.next();
    if (response.code !== FrontendCode.Password) return malformed(`expected SASL response, got message type 0x${response.code.toString(16)}`);
    const result = scram.verifyClientFinal(parseSASLResponse(response));
    if (!result.ok) return failed(result.reason);
    write(encodeBackendMessage({ type: 'Authentication', request: { kind: 'SASLFinal', data: result.serverFinal } }));
    write(encodeBackendMessage({ type: 'Authentication', request: { kind: 'Ok' } }));
    return { ok: true };
  } catch (err) {
    if (isHoopError(err) && err.code.startsWith('scram_')) {
      const code = err.code === 'scram_malformed' || err.code === 'scram_out_of_order' ? '08P01' : '28000';
      return { ok: false, reason: err.message, report: { code, message: `hoop: ${err.message}` } };
    }
    throw err;
  }
}
