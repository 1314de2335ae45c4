import type { CreateSessionRequest, CreateSessionResponse, ReviewInfo, SessionInfo, SessionStatus } from '../../src/api/types.js';
import { HoopError } from '../../src/errors.js';
import type { SessionGateway } from '../../src/client/gateway-client.js';
import type { SshTestServer } from './ssh-test-server.js';

/**
 * The session side of a gateway, in memory, for tunnel tests: hands out sessions pointing at
 * an `SshTestServer` and remembers the public key the tunnel sent.
 */
export class TestSessionGateway implements SessionGateway {
  publicKey: string | undefined;
  session: SessionInfo | undefined;
  created = 0;
  ended = 0;
  /** Override to announce a different host key. */
  fingerprint: string | undefined;
  durationMs = 15 * 60_000;
  getSessionFails = false;
  /** SSH addresses announced before the test server's own (replicas that may be down). */
  endpointsBefore: { host: string; port: number }[] = [];

  constructor(private readonly ssh: () => SshTestServer) {}

  async createSession(request: CreateSessionRequest): Promise<CreateSessionResponse> {
    this.created += 1;
    this.publicKey = request.publicKey;
    const now = Date.now();
    this.session = {
      id: `s_test${this.created}`,
      user: 'alice',
      issuer: 'https://idp.test',
      subject: 'alice',
      groups: ['agents'],
      connection: request.connection,
      reason: request.reason ?? null,
      context: request.context ?? {},
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + this.durationMs).toISOString(),
      endedAt: null,
      endReason: null,
      status: 'active',
    };
    return {
      session: this.session,
      ssh: this.sshAnswer(),
      database: { type: 'postgres', name: 'postgres', user: 'postgres', password: 'local-secret' },
    };
  }

  private sshAnswer(): CreateSessionResponse['ssh'] {
    const ssh = this.ssh();
    const own = { host: ssh.host, port: ssh.port };
    const all = [...this.endpointsBefore, own];
    return { ...all[0]!, hostKeyFingerprint: this.fingerprint ?? ssh.fingerprint, ...(all.length > 1 ? { endpoints: all } : {}) };
  }

  async claimSession(id: string, publicKey: string): Promise<CreateSessionResponse> {
    if (this.session?.id !== id) throw new HoopError('not_found', 'unknown_session', `no session ${id}`);
    this.publicKey = publicKey;
    const ssh = this.ssh();
    return {
      session: this.session,
      ssh: { host: ssh.host, port: ssh.port, hostKeyFingerprint: this.fingerprint ?? ssh.fingerprint },
      database: { type: 'postgres', name: 'postgres', user: 'postgres', password: 'local-secret' },
    };
  }

  /** Sessions here never wait for approval (the review tests run against a real gateway). */
  async getReview(id: string): Promise<ReviewInfo> {
    throw new HoopError('not_found', 'unknown_review', `no review ${id}`);
  }

  async getSession(id: string): Promise<SessionInfo> {
    if (this.getSessionFails) throw new Error('gateway unreachable');
    if (this.session?.id !== id) throw new Error(`unknown session ${id}`);
    return this.session;
  }

  async endSession(id: string): Promise<SessionInfo> {
    this.ended += 1;
    this.markEnded('ended', 'ended by alice');
    return this.getSession(id);
  }

  markEnded(status: SessionStatus, reason: string): void {
    if (this.session === undefined) return;
    this.session = { ...this.session, status, endReason: reason, endedAt: new Date().toISOString() };
  }
}
