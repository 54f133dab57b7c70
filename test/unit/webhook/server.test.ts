// The server over real TLS: well-formed reviews get admission.k8s.io/v1 answers; hostile bodies get
// a clean 4xx and the server keeps serving.
import { request } from 'node:https';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renewIfNeeded } from '../../../src/webhook/certificates.ts';
import { startWebhookServer, type WebhookServer } from '../../../src/webhook/server.ts';
import { binding, classes, create, instanceClass, node, nodes, pod } from './fixtures.ts';

interface Reply {
  status: number;
  body: string;
  json?: Record<string, unknown>;
}

let server: WebhookServer;
let ca: string;

function post(
  path: string,
  body: string | Buffer,
  headers: Record<string, string | number> = {},
  method = 'POST',
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        path,
        method,
        ca,
        agent: false,
        servername: 'ipp-webhook.test.svc',
        headers: { 'Content-Type': 'application/json', ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let json: Record<string, unknown> | undefined;
          try {
            json = JSON.parse(text) as Record<string, unknown>;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: text, ...(json ? { json } : {}) });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const review = (request: unknown) =>
  JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });
const decode = (r: Reply) => {
  const response = r.json?.response as { patch?: string; allowed?: boolean; warnings?: string[] };
  return {
    ...response,
    ops: response.patch ? (JSON.parse(Buffer.from(response.patch, 'base64').toString()) as unknown[]) : undefined,
  };
};

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
    maxBodyBytes: 64 * 1024,
    classes: classes(instanceClass('metal')),
    nodes: nodes(node('ipp-1', { 'ipp.dev/class': 'metal' })),
  });
});
afterAll(async () => {
  await server.close();
});

describe('webhook server', () => {
  it('answers a mutation with an admission.k8s.io/v1 review carrying the uid and a base64 JSONPatch', async () => {
    const r = await post('/mutate-pods', review(create(pod({ 'ipp-class': 'metal' }), { uid: 'abc-123' })));
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'abc-123', allowed: true, patchType: 'JSONPatch' },
    });
    expect(decode(r).ops).toEqual([
      { op: 'add', path: '/spec/schedulingGates', value: [{ name: 'ipp.dev/provision' }] },
      {
        op: 'add',
        path: '/spec/tolerations',
        value: [
          { key: 'ipp.dev/class', operator: 'Equal', value: 'metal', effect: 'NoSchedule' },
          { key: 'ipp.dev/class', operator: 'Equal', value: 'metal', effect: 'NoExecute' },
        ],
      },
    ]);
  });

  it('answers a denial with allowed false and a Status the apiserver shows to the user', async () => {
    const r = await post('/mutate-pods', review(create(pod({ 'ipp-class': 'gpu' }), { uid: 'u-9' })));
    expect(r.json?.response).toEqual({
      uid: 'u-9',
      allowed: false,
      status: { code: 403, reason: 'Forbidden', message: expect.stringMatching(/^InstanceClass "gpu" does not exist/) },
    });
  });

  it('routes /enforce-pods to the isolation rules, with warnings', async () => {
    const r = await post('/enforce-pods', review(create(pod({ app: 'x' }, { tolerations: [{ operator: 'Exists' }] }))));
    const res = decode(r);
    expect(res.allowed).toBe(true);
    expect(res.warnings).toEqual([expect.stringContaining('DoesNotExist')]);
    expect(res.ops).toHaveLength(1);
    const denied = await post('/enforce-pods', review(create(pod({ app: 'x' }, { nodeName: 'ipp-1' }))));
    expect(decode(denied).allowed).toBe(false);
  });

  it('serves /healthz, 404s unknown paths and 405s other methods', async () => {
    expect((await post('/healthz', '', {}, 'GET')).status).toBe(200);
    expect(await post('/validate', review(create(pod({}))))).toMatchObject({ status: 404 });
    expect((await post('/mutate-pods', '', {}, 'GET')).status).toBe(405);
  });

  const hostile: [string, string | Buffer][] = [
    ['empty body', ''],
    ['not JSON', '{"apiVersion": "admission.k8s.io/v1", '],
    ['random bytes', randomBytes(4096)],
    ['JSON null', 'null'],
    ['JSON array', '[1,2,3]'],
    ['JSON string', '"AdmissionReview"'],
    [
      'wrong apiVersion',
      JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: create(pod({})) }),
    ],
    ['wrong kind', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'Pod', request: create(pod({})) })],
    ['no request', review(undefined)],
    ['request is a string', review('x')],
    ['uid missing', review({ ...create(pod({})), uid: undefined })],
    ['uid a number', review({ ...create(pod({})), uid: 42 })],
    ['kind missing', review({ ...create(pod({})), kind: undefined })],
    ['operation an object', review({ ...create(pod({})), operation: { CREATE: true } })],
    ['namespace a number', review({ ...create(pod({})), namespace: 7 })],
    ['dryRun a string', review({ ...create(pod({})), dryRun: 'true' })],
    ['userInfo.username a list', review({ ...create(pod({})), userInfo: { username: ['a'] } })],
    ['resource a string', review({ ...create(pod({})), resource: 'pods' })],
    [
      'prototype pollution attempt',
      '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","__proto__":{"allowed":true},"request":{"__proto__":{"uid":"x"}}}',
    ],
    ['deeply nested', `${'['.repeat(50_000)}${']'.repeat(50_000)}`.slice(0, 60_000)],
  ];

  it.each(hostile)('%s → 400 with a reason', async (_what, body) => {
    const r = await post('/mutate-pods', body);
    expect(r.status).toBe(400);
    expect(r.json?.message).toEqual(expect.any(String));
  });

  // A well-formed review whose pod the rules cannot read is refused in the answer (fail closed): an
  // HTTP error would let the apiserver apply failurePolicy, and Ignore would admit the pod unchecked.
  const unreadable: [string, string][] = [
    ['object a string', review(create('pod'))],
    ['object without spec', review(create({ metadata: { labels: { 'ipp-class': 'metal' } } }))],
    ['tolerations a string', review(create(pod({ 'ipp-class': 'metal' }, { tolerations: 'Exists' as never })))],
    ['gates a number', review(create(pod({ 'ipp-class': 'metal' }, { schedulingGates: 3 as never })))],
  ];
  it.each(unreadable)('%s → a denial (500), not an HTTP error', async (_what, body) => {
    const r = await post('/mutate-pods', body);
    expect(r.status).toBe(200);
    expect(r.json?.response).toMatchObject({
      allowed: false,
      status: { code: 500, reason: 'InternalError', message: expect.stringMatching(/refuses it/) },
    });
  });

  it('rejects bodies over the cap with 413, declared or streamed, and keeps serving', async () => {
    const huge = Buffer.alloc(200 * 1024, 'a');
    expect((await post('/mutate-pods', huge)).status).toBe(413);
    // Chunked: no Content-Length to trust, the cap must hold while reading.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: server.port,
          path: '/mutate-pods',
          method: 'POST',
          ca,
          servername: 'ipp-webhook.test.svc',
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write(Buffer.alloc(16 * 1024, '{'));
      req.end();
    });
    expect(chunked).toBe(413);
    expect((await post('/mutate-pods', review(create(pod({ 'ipp-class': 'metal' }))))).status).toBe(200);
  });

  it('survives a burst of random mutations of a valid review, answering every one with 200 or 400', async () => {
    const valid = create(pod({ 'ipp-class': 'metal' }, { tolerations: [{ operator: 'Exists' }] })) as unknown as Record<
      string,
      unknown
    >;
    const junk = [null, 0, -1, 1e308, '', 'x'.repeat(1000), [], {}, [null], { a: { b: {} } }, true];
    const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;
    const paths = [
      ['uid'],
      ['kind'],
      ['kind', 'kind'],
      ['operation'],
      ['object'],
      ['object', 'spec'],
      ['object', 'metadata'],
      ['object', 'metadata', 'labels'],
      ['object', 'metadata', 'ownerReferences'],
      ['object', 'spec', 'tolerations'],
      ['object', 'spec', 'affinity'],
      ['object', 'spec', 'nodeName'],
      ['oldObject'],
      ['userInfo'],
      ['subResource'],
    ];
    const statuses = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const req = structuredClone(valid);
        const path = pick(paths);
        let target = req;
        for (const p of path.slice(0, -1)) {
          if (typeof target[p] !== 'object' || target[p] === null) target[p] = {};
          target = target[p] as Record<string, unknown>;
        }
        target[path[path.length - 1]!] = pick(junk);
        if (Math.random() < 0.3) req.operation = pick(['CREATE', 'UPDATE', 'DELETE']);
        const r = await post(pick(['/mutate-pods', '/enforce-pods']), review(req));
        if (r.status === 200)
          expect(r.json?.response).toMatchObject({ uid: expect.any(String), allowed: expect.any(Boolean) });
        else expect(r.json?.message).toEqual(expect.any(String));
        return r.status;
      }),
    );
    expect(new Set(statuses.filter((s) => s !== 200 && s !== 400))).toEqual(new Set());
    expect((await post('/healthz', '', {}, 'GET')).status).toBe(200);
    // 200 TLS handshakes: generous on a shared, loaded machine; what matters is that each is answered.
  }, 60_000);

  it('swaps its certificate with setSecureContext for new connections', async () => {
    const next = (await renewIfNeeded(undefined, { dnsNames: ['ipp-webhook.test.svc'], ipAddresses: [] }, new Date()))!;
    server.setSecureContext(next);
    await expect(post('/healthz', '', {}, 'GET')).rejects.toThrow(/self.signed|unable to verify|certificate/i);
    const oldCa = ca;
    ca = next.caBundle;
    try {
      expect((await post('/healthz', '', {}, 'GET')).status).toBe(200);
    } finally {
      ca = oldCa;
    }
  });
});

describe('webhook server: nodes the cache does not hold', () => {
  it('reads an ordinary node a binding targets once for a few seconds, and a missing one every time', async () => {
    const m = (await renewIfNeeded(undefined, { dnsNames: [], ipAddresses: ['127.0.0.1'] }, new Date()))!;
    const reads: string[] = [];
    const other = await startWebhookServer({
      tls: m,
      port: 0,
      host: '127.0.0.1',
      placement: 'pin',
      classes: classes(instanceClass('metal')),
      nodes: {
        get: (name) => (name === 'ipp-1' ? node('ipp-1', { 'ipp.dev/class': 'metal' }) : undefined),
        fetch: async (name) => {
          reads.push(name);
          return name === 'plain-1' ? node('plain-1', {}) : undefined;
        },
      },
    });
    const bind = async (target: string) => {
      const body = review(binding('job-1', target, 'system:serviceaccount:volcano:scheduler'));
      const r = await new Promise<Reply>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: other.port, path: '/enforce-pods', method: 'POST', ca: m.caBundle, agent: false },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
      return (JSON.parse(r.body) as { response: { allowed: boolean } }).response.allowed;
    };
    try {
      // A scheduler of its own binding to ordinary nodes: one read, then the answer is remembered.
      expect(await bind('plain-1')).toBe(true);
      expect(await bind('plain-1')).toBe(true);
      expect(reads).toEqual(['plain-1']);
      // A name that has not registered is read (and refused) every time: it may register any moment.
      expect(await bind('future-1')).toBe(false);
      expect(await bind('future-1')).toBe(false);
      expect(reads).toEqual(['plain-1', 'future-1', 'future-1']);
    } finally {
      await other.close();
    }
  });
});
