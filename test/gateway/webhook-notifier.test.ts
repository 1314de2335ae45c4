import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReviewInfo } from '../../src/api/types.js';
import { WebhookNotifier, webhookPayload } from '../../src/gateway/webhook-notifier.js';
import { tempStore } from '../store/temp-store.js';

/** A receiver that answers each request with the next status of `script` (then 200); 0 = never answer. */
async function receiver(script: number[] = []) {
  const requests: { event: string; delivery: string; body: any }[] = [];
  const server = http.createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (text += c));
    req.on('end', () => {
      requests.push({ event: String(req.headers['x-hoop-event']), delivery: String(req.headers['x-hoop-delivery']), body: JSON.parse(text) });
      const status = script.length > 0 ? script.shift()! : 200;
      if (status !== 0) res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  cleanups.push(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return { url, requests };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const warnings: { message: string; fields?: Record<string, unknown> }[] = [];
const logger = { debug() {}, info() {}, warn: (message: string, fields?: Record<string, unknown>) => void warnings.push({ message, fields }), error() {} };

function notifier(url: string, over: Partial<ConstructorParameters<typeof WebhookNotifier>[0]> = {}) {
  const n = new WebhookNotifier({ url, attempts: 4, timeoutMs: 2000, backoffMs: 10, maxBackoffMs: 40, logger, ...over });
  cleanups.push(() => n.close());
  return n;
}

function review(over: Partial<ReviewInfo> = {}): ReviewInfo {
  return {
    id: 'rev_1',
    kind: 'statement',
    status: 'pending',
    sessionId: 'ses_1',
    connection: 'orders-db',
    requester: { user: 'alice', issuer: 'https://idp.test', subject: 'alice', groups: ['agents'] },
    reason: null,
    context: {},
    statement: { text: 'DROP TABLE orders', protocol: 'simple', rule: 'no-ddl', reason: 'DROP on public.orders', approval: { key: 'ak1:f', template: 'DROP TABLE orders', varying: [], covers: 'only this statement' }, facts: [] },
    durationMs: null,
    createdAt: '2026-01-01T00:00:00.000Z',
    expiresAt: '2026-01-01T00:10:00.000Z',
    decidedAt: null,
    approvals: [],
    minApprovals: 1,
    rejection: null,
    scope: null,
    endReason: null,
    reviewerGroups: ['dba'],
    ...over,
  };
}

describe('WebhookNotifier', () => {
  it('retries 5xx with backoff under one delivery id, and keeps a review’s events in order', async () => {
    const hook = await receiver([503, 500]);
    const n = notifier(hook.url);
    n.announce('review.created', review());
    n.announce('review.decided', review({ status: 'approved', approvals: [{ user: 'bob', at: '2026-01-01T00:01:00.000Z', reason: null }] }));
    await n.idle();
    expect(hook.requests.map((r) => r.event)).toEqual(['review.created', 'review.created', 'review.created', 'review.decided']);
    expect(new Set(hook.requests.slice(0, 3).map((r) => r.delivery)).size).toBe(1);
    expect(hook.requests[3]!.delivery).not.toBe(hook.requests[0]!.delivery);
    expect(n.stats).toEqual({ delivered: 2, failedAttempts: 2, dropped: 0 });
  });

  it('gives up after the configured attempts, and does not retry a 4xx the receiver refuses', async () => {
    const hook = await receiver([500, 500, 500, 400]);
    const n = notifier(hook.url, { attempts: 3 });
    n.announce('review.created', review({ id: 'rev_a' }));
    await n.idle();
    n.announce('review.created', review({ id: 'rev_b' }));
    await n.idle();
    expect(hook.requests.map((r) => r.body.review.id)).toEqual(['rev_a', 'rev_a', 'rev_a', 'rev_b']);
    expect(n.stats).toEqual({ delivered: 0, failedAttempts: 4, dropped: 2 });
    expect(warnings.at(-1)).toMatchObject({ message: 'review webhook failed; giving up', fields: { review: 'rev_b', error: 'HTTP 400', attempt: 1 } });
  });

  it('retries a receiver that does not answer in time, and one that is not there', async () => {
    const hook = await receiver([0]);
    const n = notifier(hook.url, { timeoutMs: 100 });
    n.announce('review.created', review());
    await n.idle();
    expect(hook.requests).toHaveLength(2);
    expect(n.stats.delivered).toBe(1);

    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const gone = notifier(`http://127.0.0.1:${port}/hook`, { attempts: 2 });
    gone.announce('review.created', review());
    await gone.idle();
    expect(gone.stats).toEqual({ delivered: 0, failedAttempts: 2, dropped: 1 });
    expect(String(warnings.at(-1)!.fields!.error)).toContain('ECONNREFUSED');
  });

  it('stops retrying when closed', async () => {
    const hook = await receiver([503, 503, 503, 503]);
    const n = notifier(hook.url, { backoffMs: 5000, maxBackoffMs: 5000 });
    n.announce('review.created', review());
    // The receiver has the request before the notifier has read its 503: wait for the notifier.
    while (n.stats.failedAttempts === 0) await new Promise((r) => setTimeout(r, 5));
    const started = Date.now();
    await n.close();
    expect(Date.now() - started).toBeLessThan(1000); // not the 5 s backoff
    expect(n.stats).toEqual({ delivered: 0, failedAttempts: 1, dropped: 0 });
    expect(hook.requests).toHaveLength(1);
  });

  it('keeps notifications in the outbox until delivered, and sends them again after a restart', async () => {
    const t = tempStore();
    cleanups.push(() => t.cleanup());
    const hook = await receiver([503, 503, 503]);
    const first = notifier(hook.url, { outbox: t.store, backoffMs: 5000, maxBackoffMs: 5000 });
    first.announce('review.created', review());
    first.announce('review.decided', review({ status: 'rejected', rejection: { user: 'bob', at: 't', reason: 'no' } }));
    while (hook.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    await first.close(); // the "restart": the first attempt failed, the rest never went
    expect((await t.store.listOutbox()).map((e) => e.event)).toEqual(['review.created', 'review.decided']);

    const second = notifier(hook.url, { outbox: t.store });
    expect(await second.resume()).toBe(2);
    await second.idle();
    expect(hook.requests.map((r) => r.event)).toEqual(['review.created', 'review.created', 'review.created', 'review.created', 'review.decided']);
    expect(new Set(hook.requests.slice(0, 4).map((r) => r.delivery)).size).toBe(1); // one delivery id across the restart
    expect(await t.store.listOutbox()).toEqual([]);
  });

  it('clears a notification it gave up on from the outbox', async () => {
    const t = tempStore();
    cleanups.push(() => t.cleanup());
    const hook = await receiver([404]);
    const n = notifier(hook.url, { outbox: t.store });
    n.announce('review.created', review());
    await n.idle();
    expect(n.stats.dropped).toBe(1);
    expect(await t.store.listOutbox()).toEqual([]);
  });
});

describe('webhookPayload', () => {
  it('describes a held statement for people (Slack text) and machines', () => {
    const payload = webhookPayload('review.created', review());
    expect(payload).toMatchObject({ event: 'review.created', approve: 'hoopctl reviews approve rev_1', reject: 'hoopctl reviews reject rev_1 --reason TEXT' });
    expect(payload.text).toBe(
      ':hourglass_flowing_sand: *alice* (agents) wants to run a statement on *orders-db*, held by rule `no-ddl`:\n```DROP TABLE orders```\n' +
        'Review `rev_1` · approve: `hoopctl reviews approve rev_1` · reject: `hoopctl reviews reject rev_1 --reason TEXT` · times out 2026-01-01T00:10:00.000Z',
    );
  });

  it.each([
    [{ status: 'approved', scope: 'session', approvals: [{ user: 'bob', at: 't', reason: null }] }, ":white_check_mark: review `rev_1` (alice's statement on *orders-db*) approved by bob for the rest of the session"],
    [{ status: 'rejected', rejection: { user: 'bob', at: 't', reason: 'no' } }, ":no_entry: review `rev_1` (alice's statement on *orders-db*) rejected by bob: no"],
    [{ status: 'timed_out', endReason: 'no reviewer decided within 10m' }, ":alarm_clock: review `rev_1` (alice's statement on *orders-db*) timed out: no reviewer decided within 10m"],
    [{ status: 'withdrawn', endReason: 'cancelled by the client' }, ":leftwards_arrow_with_hook: review `rev_1` (alice's statement on *orders-db*) withdrawn: cancelled by the client"],
  ] as const)('says how a review ended: %o', (over, text) => {
    expect(webhookPayload('review.decided', review(over as Partial<ReviewInfo>)).text).toBe(text);
  });

  it('describes a session request', () => {
    const text = webhookPayload('review.created', review({ kind: 'session', statement: null, durationMs: 30 * 60_000, reason: 'incident 42' })).text;
    expect(text.split('\n')[0]).toBe(':key: *alice* (agents) asks for a 30m session on *orders-db*: incident 42');
  });
});
