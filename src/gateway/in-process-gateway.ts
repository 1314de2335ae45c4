import type { CreateSessionRequest, CreateSessionResponse, PolicyTestResponse, ReviewInfo, ReviewStatus, SessionInfo } from '../api/types.js';
import type { SessionGateway } from '../client/gateway-client.js';
import type { HttpApi } from './http-api.js';
import type { Identity } from './token-verifier.js';

/**
 * The gateway's API as one caller, called in this process: what a `Tunnel` needs to open a
 * session, plus the reads the MCP tools make. The same handlers and checks as over HTTP; the
 * tunnel then dials the gateway's own SSH listener, so statements take the engine path
 * (policy, masking, audit) like any client's.
 */
export class InProcessGateway implements SessionGateway {
  constructor(
    private readonly api: HttpApi,
    private readonly identity: Identity,
    /** Where this process reaches its own SSH listener (not the address advertised to others). */
    private readonly sshDial: () => { host: string; port: number },
  ) {}

  async createSession(request: CreateSessionRequest): Promise<CreateSessionResponse> {
    return this.dialHere(await this.api.invoke<CreateSessionResponse>(this.identity, 'POST', '/api/v1/sessions', request));
  }

  async claimSession(id: string, publicKey: string, connection?: string): Promise<CreateSessionResponse> {
    return this.dialHere(await this.api.invoke<CreateSessionResponse>(this.identity, 'POST', `/api/v1/sessions/${encodeURIComponent(id)}/key`, { publicKey, connection }));
  }

  async getSession(id: string): Promise<SessionInfo> {
    return (await this.api.invoke<{ session: SessionInfo }>(this.identity, 'GET', `/api/v1/sessions/${encodeURIComponent(id)}`)).session;
  }

  async endSession(id: string): Promise<SessionInfo> {
    return (await this.api.invoke<{ session: SessionInfo }>(this.identity, 'DELETE', `/api/v1/sessions/${encodeURIComponent(id)}`)).session;
  }

  async getReview(id: string, options: { waitSeconds?: number } = {}): Promise<ReviewInfo> {
    const wait = options.waitSeconds ? `?wait=${options.waitSeconds}` : '';
    return (await this.api.invoke<{ review: ReviewInfo }>(this.identity, 'GET', `/api/v1/reviews/${encodeURIComponent(id)}${wait}`)).review;
  }

  async listReviews(filter: { status?: ReviewStatus; limit?: number } = {}): Promise<ReviewInfo[]> {
    const query = new URLSearchParams();
    if (filter.status !== undefined) query.set('status', filter.status);
    if (filter.limit !== undefined) query.set('limit', String(filter.limit));
    const suffix = query.size > 0 ? `?${query.toString()}` : '';
    return (await this.api.invoke<{ reviews: ReviewInfo[] }>(this.identity, 'GET', `/api/v1/reviews${suffix}`)).reviews;
  }

  testPolicy(connection: string, sql: string): Promise<PolicyTestResponse> {
    return this.api.invoke<PolicyTestResponse>(this.identity, 'POST', '/api/v1/policy/test', { connection, sql });
  }

  private dialHere(answer: CreateSessionResponse): CreateSessionResponse {
    return { ...answer, ssh: { ...answer.ssh, ...this.sshDial() } };
  }
}
