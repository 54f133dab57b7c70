// A small HTTP proxy in front of moto's server that adds what moto lacks and real EC2 does:
// error documents on demand (capacity, throttling), EC2's published token buckets, RunInstances
// ClientToken idempotency, lost responses, and a count of requests per Action. Everything else is
// moto's real Query API. Error format (testbed.md §5.1):
// <Response><Errors><Error><Code>…</Code><Message>…</Message></Error></Errors><RequestID>…</RequestID></Response>
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TokenBucket, type BucketShape } from '../../providers/aws/ratelimit.ts';

export interface FaultRule {
  /** EC2 Action (form parameter), e.g. RunInstances. */
  action: string;
  /** Only requests whose form parameters have these values, e.g. { InstanceType: 'i3.metal' }. */
  when?: Record<string, string>;
  /** Answer with this EC2 error code instead of forwarding (InsufficientInstanceCapacity, RequestLimitExceeded…). */
  code?: string;
  message?: string;
  /** HTTP status of the error; default: 503 for throttling, 500 for capacity/internal, else 400. */
  status?: number;
  /** Forward to moto (so the call takes effect), then lose the answer: 'reset' drops the connection, 'error' answers 500 InternalError. */
  lose?: 'reset' | 'error';
  /**
   * Forward to moto (so the call takes effect), then hold the answer this long before sending it. A
   * client that goes away meanwhile (killed process) never gets it: the request is recorded as lost.
   */
  holdMs?: number;
  /** RunInstances only: forward, but let EC2 launch at most this many (capacity for fewer than MaxCount). */
  capacity?: number;
  /** How many matching requests the rule applies to; default every one. */
  times?: number;
}

export interface ProxiedRequest {
  action: string;
  params: URLSearchParams;
  /** What the client got: forwarded, injected (error), throttled (bucket empty), lost, replayed (ClientToken). */
  outcome: 'forwarded' | 'injected' | 'throttled' | 'lost' | 'replayed';
  /** The access key id the request was signed with (absent for unsigned calls such as AssumeRoleWithWebIdentity). */
  accessKeyId?: string;
}

export interface Ec2FaultProxyOptions {
  /** moto's endpoint. */
  target: string;
  /** Enforce EC2's token buckets (RequestLimitExceeded when empty). Default false. */
  buckets?: boolean;
  /** Implement RunInstances ClientToken idempotency. Default true. */
  clientTokens?: boolean;
}

export interface Ec2FaultProxy {
  endpoint: string;
  requests: ProxiedRequest[];
  /** Requests received for `action` (optionally only with this outcome). */
  count(action: string, outcome?: ProxiedRequest['outcome']): number;
  /** The form parameters of every `action` request, in order (e.g. RunInstances: Placement.Tenancy, CpuOptions.*). */
  paramsOf(action: string): Record<string, string>[];
  inject(rule: FaultRule): void;
  clear(): void;
  close(): Promise<void>;
}

/** EC2's buckets ("Request throttling for the Amazon EC2 API"): request tokens per Action family. */
const REQUEST_BUCKETS: Record<string, BucketShape> = {
  RunInstances: { burst: 5, perSecond: 2 },
  TerminateInstances: { burst: 100, perSecond: 5 },
  CreateTags: { burst: 100, perSecond: 10 },
  describe: { burst: 100, perSecond: 20 },
  mutating: { burst: 50, perSecond: 5 },
};
/** RunInstances also spends one resource token per instance. */
const RUN_RESOURCE_BUCKET: BucketShape = { burst: 1000, perSecond: 2 };

function family(action: string): string {
  if (action in REQUEST_BUCKETS) return action;
  return /^(Describe|Get|List)/.test(action) ? 'describe' : 'mutating';
}

function defaultStatus(code: string): number {
  if (code === 'RequestLimitExceeded') return 503;
  if (/Insufficient|Internal|Unavailable/.test(code)) return 500;
  return 400;
}

export function ec2ErrorDocument(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>${randomUUID()}</RequestID></Response>`;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The request's parameters without the ones that may differ between retries of the same call. */
function paramsKey(params: URLSearchParams): string {
  return [...params.entries()]
    .filter(([k]) => k !== 'ClientToken')
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

export async function startEc2FaultProxy(opts: Ec2FaultProxyOptions): Promise<Ec2FaultProxy> {
  const rules: (FaultRule & { used: number })[] = [];
  const requests: ProxiedRequest[] = [];
  const buckets = new Map<string, TokenBucket>();
  const runResources = new TokenBucket(RUN_RESOURCE_BUCKET);
  const tokens = new Map<string, { key: string; body: string; instanceIds: string[] }>();

  const bucket = (f: string) => {
    let b = buckets.get(f);
    if (!b) buckets.set(f, (b = new TokenBucket(REQUEST_BUCKETS[f]!)));
    return b;
  };

  const forward = async (req: IncomingMessage, body: Buffer | string) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (typeof v === 'string' && !['host', 'content-length', 'connection', 'transfer-encoding'].includes(k))
        headers[k] = v;
    }
    const r = await fetch(new URL(req.url ?? '/', opts.target), {
      method: req.method,
      headers,
      body: req.method === 'GET' ? undefined : body,
    });
    return { status: r.status, type: r.headers.get('content-type') ?? 'text/xml', text: await r.text() };
  };

  /** A repeated ClientToken: the first call's answer, with today's instance states (as EC2 does). */
  const replay = async (req: IncomingMessage, saved: { body: string; instanceIds: string[] }) => {
    const q = new URLSearchParams({ Action: 'DescribeInstances', Version: '2016-11-15' });
    saved.instanceIds.forEach((id, i) => q.set(`InstanceId.${i + 1}`, id));
    const now = await forward(req, q.toString());
    let body = saved.body;
    for (const id of saved.instanceIds) {
      const at = now.text.indexOf(`<instanceId>${id}</instanceId>`);
      const state = at >= 0 ? /<instanceState>[\s\S]*?<\/instanceState>/.exec(now.text.slice(at))?.[0] : undefined;
      const mine = body.indexOf(`<instanceId>${id}</instanceId>`);
      if (!state || mine < 0) continue;
      const rest = body.slice(mine).replace(/<instanceState>[\s\S]*?<\/instanceState>/, state);
      body = body.slice(0, mine) + rest;
    }
    return body;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const raw = await readBody(req);
    const params = new URLSearchParams(raw.toString('utf8'));
    const action = params.get('Action') ?? (req.headers['x-amz-target'] as string | undefined) ?? 'unknown';
    const accessKeyId = /Credential=([^/]+)\//.exec(req.headers.authorization ?? '')?.[1];
    const record = (outcome: ProxiedRequest['outcome']) =>
      requests.push({ action, params, outcome, ...(accessKeyId ? { accessKeyId } : {}) });
    const reply = (status: number, text: string, type = 'text/xml') => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };

    if (opts.buckets) {
      const f = family(action);
      const count = action === 'RunInstances' ? Number(params.get('MaxCount') ?? 1) : 0;
      if (!bucket(f).tryTake().ok || (count > 0 && !runResources.tryTake(count).ok)) {
        record('throttled');
        return reply(503, ec2ErrorDocument('RequestLimitExceeded', 'Request limit exceeded.'));
      }
    }

    const rule = rules.find(
      (r) =>
        r.action === action &&
        r.used < (r.times ?? Infinity) &&
        Object.entries(r.when ?? {}).every(([k, v]) => params.get(k) === v),
    );
    if (rule) rule.used++;
    if (rule?.code) {
      record('injected');
      return reply(
        rule.status ?? defaultStatus(rule.code),
        ec2ErrorDocument(rule.code, rule.message ?? `injected by the test proxy for ${action}`),
      );
    }

    const token = action === 'RunInstances' && opts.clientTokens !== false ? params.get('ClientToken') : null;
    const saved = token ? tokens.get(token) : undefined;
    if (token && saved) {
      if (saved.key !== paramsKey(params)) {
        record('injected');
        return reply(
          400,
          ec2ErrorDocument(
            'IdempotentParameterMismatch',
            `Arguments on this idempotent request are inconsistent with arguments used in previous request(s) (ClientToken ${token})`,
          ),
        );
      }
      record('replayed');
      return reply(200, await replay(req, saved));
    }

    let body: Buffer | string = raw;
    if (action === 'RunInstances') {
      // EC2 launches as many as it can up to MaxCount (at least MinCount); moto launches MinCount.
      const q = new URLSearchParams(params);
      const max = Number(params.get('MaxCount') ?? 1);
      const launched = Math.min(max, rule?.capacity ?? max);
      if (launched < Number(params.get('MinCount') ?? 1)) {
        record('injected');
        return reply(
          500,
          ec2ErrorDocument(
            'InsufficientInstanceCapacity',
            `We currently do not have sufficient ${params.get('InstanceType')} capacity (test proxy: ${launched} left).`,
          ),
        );
      }
      q.set('MinCount', String(launched));
      q.set('MaxCount', String(launched));
      body = q.toString();
    }
    const answer = await forward(req, body);
    if (token && answer.status === 200) {
      const instanceIds = [...answer.text.matchAll(/<instanceId>(i-[0-9a-f]+)<\/instanceId>/g)].map((m) => m[1]!);
      tokens.set(token, { key: paramsKey(params), body: answer.text, instanceIds });
    }
    if (rule?.holdMs) {
      const gone = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), rule.holdMs);
        res.once('close', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (gone) {
        record('lost');
        return;
      }
    }
    if (rule?.lose) {
      record('lost');
      if (rule.lose === 'reset') {
        req.socket.destroy();
        return;
      }
      return reply(
        500,
        ec2ErrorDocument(
          'InternalError',
          'An internal error has occurred (lost by the test proxy after moto handled the call)',
        ),
      );
    }
    record('forwarded');
    return reply(answer.status, answer.text, answer.type);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`ec2-fault-proxy: ${e instanceof Error ? e.message : String(e)}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    count: (action, outcome) =>
      requests.filter((r) => r.action === action && (!outcome || r.outcome === outcome)).length,
    paramsOf: (action) => requests.filter((r) => r.action === action).map((r) => Object.fromEntries(r.params)),
    inject: (rule) => rules.push({ ...rule, used: 0 }),
    clear: () => rules.splice(0),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
