/**
 * The client side of the upstream password exchange (PostgreSQL docs, "Message Flow" →
 * "Start-up", "Password Authentication", "SASL Authentication"): one answer per
 * Authentication request, with the gateway's real credentials.
 */
import {
  encodePasswordMessage,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  type AuthenticationRequest,
} from '../../protocol/postgres/index.js';
import { md5PasswordResponse } from '../../protocol/postgres/md5.js';
import { SCRAM_SHA_256, ScramClient } from '../../protocol/postgres/scram.js';
import { HoopError, errorMessage } from '../../errors.js';

export class UpstreamAuthenticator {
  private scram: ScramClient | undefined;
  private scramVerified = false;
  private done = false;

  constructor(
    private readonly credentials: { user: string; password: string },
    private readonly saltedPassword?: (salt: Buffer, iterations: number) => Buffer,
  ) {}

  /** True once the server sent AuthenticationOk (after proving itself, for SCRAM). */
  get authenticated(): boolean {
    return this.done;
  }

  /**
   * The message answering `request`, or undefined when none is due (Ok, SASLFinal). Throws a
   * HoopError: upstream_auth_unsupported, upstream_auth_failed or upstream_protocol.
   */
  respond(request: AuthenticationRequest): Buffer | undefined {
    const { user, password } = this.credentials;
    switch (request.kind) {
      case 'Ok':
        // A SCRAM server that skips SASLFinal never proved it knows the password.
        if (this.scram !== undefined && !this.scramVerified) throw fail('upstream_auth_failed', 'the server skipped the end of the SCRAM exchange');
        this.done = true;
        return undefined;
      case 'CleartextPassword':
        return encodePasswordMessage(password);
      case 'MD5Password':
        return encodePasswordMessage(md5PasswordResponse(user, password, request.salt));
      case 'SASL':
        if (!request.mechanisms.includes(SCRAM_SHA_256)) {
          throw fail('upstream_auth_unsupported', `SASL mechanisms ${request.mechanisms.join(', ')}`);
        }
        this.scram = new ScramClient(password, { saltedPassword: this.saltedPassword });
        return encodeSASLInitialResponse(SCRAM_SHA_256, this.scram.clientFirstMessage());
      case 'SASLContinue': {
        const scram = this.expectScram('SASLContinue');
        return encodeSASLResponse(scramStep(() => scram.clientFinalMessage(request.data)));
      }
      case 'SASLFinal': {
        const scram = this.expectScram('SASLFinal');
        scramStep(() => scram.verifyServerFinal(request.data));
        this.scramVerified = true;
        return undefined;
      }
      default:
        throw fail('upstream_auth_unsupported', `${request.kind} authentication`);
    }
  }

  private expectScram(what: string): ScramClient {
    if (this.scram === undefined) throw fail('upstream_protocol', `${what} before AuthenticationSASL`);
    return this.scram;
  }
}

function fail(code: 'upstream_auth_unsupported' | 'upstream_auth_failed' | 'upstream_protocol', message: string, cause?: unknown): HoopError {
  return new HoopError(code === 'upstream_protocol' ? 'protocol' : 'auth', code, message, { cause });
}

function scramStep<T>(step: () => T): T {
  try {
    return step();
  } catch (err) {
    throw fail('upstream_auth_failed', errorMessage(err), err);
  }
}
