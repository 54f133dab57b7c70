// Any in-cluster client can reach the webhook (T6). A flood of half-open connections, idle
// keep-alives, stalled bodies and oversized bodies must not stop a legitimate review from being
// answered promptly: with failurePolicy Fail, an unanswered review refuses the pod. Loopback only,
// bounded in count and time.
import { connect, type TLSSocket } from 'node:tls';
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renewIfNeeded } from '../../../src/webhook/certificates.ts';
import { startWebhookServer, type WebhookServer } from '../../../src/webhook/server.ts';
import { classes, create, instanceClass, nodes, pod } from './fixtures.ts';

let server: WebhookServer;
let ca: string;
const sockets: TLSSocket[] = [];
const closed = new WeakSet<TLSSocket>();

const LIMITS = {
  maxConnections: 16,
  maxInFlight: 8,
  maxLargeBodies: 2,
  headersTimeoutMs: 2_000,
  requestTimeoutMs: 3_000,
};

/** A TLS connection that writes `data` and then stalls, as a slow or hostile client would. */
function stall(data: string | Buffer): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: server.port, ca, servername: 'ipp-webhook.test.svc' }, () => {
      s.write(data);
      resolve(s);
    });
    s.on('error', () => {}); // evicted or timed out: expected
    s.on('close', () => closed.add(s));
    s.resume(); // read what the server says, so its closing the connection is seen
    s.once('error', reject);
    sockets.push(s);
  });
}

const review = JSON.stringify({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: create(pod({ 'ipp-class': 'metal' }), { uid: 'legit' }),
});

/** What the apiserver does: a fresh connection, the whole review at once. */
function legitimate(): Promise<{ status: number; allowed: unknown; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        path: '/mutate-pods',
        method: 'POST',
        ca,
        agent: false,
        servername: 'ipp-webhook.test.svc',
        headers: { 'Content-Type': 'application/json' },
        timeout: 5_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = JSON.parse(Buffer.concat(chunks).toString()) as { response?: { allowed?: unknown } };
          resolve({ status: res.statusCode ?? 0, allowed: body.response?.allowed, ms: Date.now() - started });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('legitimate review timed out')));
    req.on('error', reject);
    req.end(review);
  });
}

beforeAll(async () => {
  const m = (await renewIfNeeded(
    undefined,
    { dnsNames: ['ipp-webhook.test.svc'], ipAddresses: ['127.0.0.1'] },
    new Date(),
  ))!;
  ca = m.caBundle;
  server = await startWebhookServer({
    tls: m,
    port: 0,
    host: '127.0.0.1',
    placement: 'pin',
    classes: classes(instanceClass('metal')),
    nodes: nodes(),
    limits: LIMITS,
  });
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await server.close();
});

describe('webhook server under a flood', () => {
  it('answers legitimate reviews promptly while every connection slot is taken by stalled clients', async () => {
    // Headers that never end, keep-alive connections left idle after one request, bodies that stop
    // halfway (small and large): three times the connection cap in all.
    const flood: Promise<TLSSocket>[] = [];
    for (let i = 0; i < 16; i++) flood.push(stall('POST /mutate-pods HTTP/1.1\r\nHost: x\r\n'));
    for (let i = 0; i < 16; i++) flood.push(stall('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
    for (let i = 0; i < 12; i++)
      flood.push(stall(`POST /mutate-pods HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n{"apiVersion":`));
    for (let i = 0; i < 4; i++)
      flood.push(
        stall(
          Buffer.concat([
            Buffer.from(`POST /mutate-pods HTTP/1.1\r\nHost: x\r\nContent-Length: ${3 * 1024 * 1024}\r\n\r\n`),
            Buffer.alloc(512 * 1024, 'x'),
          ]),
        ),
      );
    await Promise.allSettled(flood);

    for (let i = 0; i < 5; i++) {
      const r = await legitimate();
      expect(r.status).toBe(200);
      expect(r.allowed).toBe(true);
      // Well within the webhook's timeoutSeconds (5 by default), even on a loaded 2-core machine.
      expect(r.ms).toBeLessThan(3_000);
    }
    // The flood was shed, not served: no more connections than the cap are left open.
    await new Promise((r) => setTimeout(r, 300));
    expect(sockets.filter((s) => !closed.has(s)).length).toBeLessThanOrEqual(LIMITS.maxConnections);
  });

  it('refuses large bodies beyond their slots at once, without reading them, and keeps serving', async () => {
    const big = `POST /mutate-pods HTTP/1.1\r\nHost: x\r\nContent-Length: ${1024 * 1024}\r\n\r\n`;
    const answers = await Promise.all(
      Array.from(
        { length: 4 },
        () =>
          new Promise<string>((resolve) => {
            void stall(big).then((s) => {
              let text = '';
              s.on('data', (d: Buffer) => (text += d.toString()));
              s.on('close', () => resolve(text));
              setTimeout(() => resolve(text), 4_000);
            });
          }),
      ),
    );
    // Two fit the large-body slots (and time out later); the others are refused straight away.
    expect(answers.filter((a) => a.startsWith('HTTP/1.1 503')).length).toBeGreaterThanOrEqual(2);
    expect((await legitimate()).status).toBe(200);
  });

  it('cuts off a client that never finishes its headers, and one that never finishes its body', async () => {
    const closing = (s: TLSSocket) => new Promise<number>((resolve) => s.on('close', () => resolve(Date.now())));
    const started = Date.now();
    const [headers, body] = await Promise.all([
      stall('POST /mutate-pods HTTP/1.1\r\nHost: x\r\n').then(closing),
      stall('POST /mutate-pods HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{').then(closing),
    ]);
    // Node checks these timeouts once a second (connectionsCheckingInterval).
    expect(headers - started).toBeLessThan(LIMITS.headersTimeoutMs + 1_500);
    expect(body - started).toBeLessThan(LIMITS.requestTimeoutMs + 1_500);
  }, 15_000);
});
