// The fake Compute Engine's HTTP face: exactly the REST subset ipp calls (Compute Engine v1,
// JSON over HTTP/1.1, as the Node.js client's REST transport sends it), with GCE's error documents,
// a bearer-token check against the fake metadata server's token, and fault knobs (throttling,
// latency, lost answers). State and its clock live in state.ts; Nodes in nodes.ts.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeCompute, type FakeMig, type FakeOperation, type FakeVm, type ManagedRecord } from './state.ts';

export interface RecordedCall {
  /** REST method name, e.g. instanceGroupManagers.createInstances. */
  method: string;
  outcome: 'answered' | 'throttled' | 'unauthorized' | 'lost' | 'error';
  requestId?: string;
  body?: unknown;
  /** The list filter asked for (instances.aggregatedList), as sent. */
  filter?: string;
}

export interface FakeGceServer {
  endpoint: string;
  state: FakeCompute;
  calls: RecordedCall[];
  count(method: string, outcome?: RecordedCall['outcome']): number;
  /** The next `n` calls (of `method`, or any) answer 429 rateLimitExceeded (or 403, as GCE's per-user limit does). */
  throttle(n: number, opts?: { method?: string; status?: 429 | 403 }): void;
  /**
   * The next `n` calls of `method` take effect, then the answer is lost: the connection drops, or
   * with `holdMs` the answer is held that long and lost if the client went away meanwhile (killed).
   */
  lose(method: string, n?: number, holdMs?: number): void;
  latencyMs: number;
  /** Projects the caller may not read: every call in them is answered 403 forbidden, as GCE does. */
  forbiddenProjects: Set<string>;
  close(): Promise<void>;
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
};

/** GCE's error document (the legacy `errors` list plus google.rpc details). */
export function errorDocument(code: number, message: string, reason: string, status: string, info?: string) {
  return {
    error: {
      code,
      message,
      errors: [{ message, domain: reason === 'rateLimitExceeded' ? 'usageLimits' : 'global', reason }],
      status,
      ...(info
        ? { details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: info, domain: 'googleapis.com' }] }
        : {}),
    },
  };
}

const notFound = (what: string) => errorDocument(404, `The resource '${what}' was not found`, 'notFound', 'NOT_FOUND');

/** The REST method a request calls, named as in the API reference. */
export function methodOf(httpMethod: string, pathname: string): string {
  const path = pathname.replace(/^\/compute\/v1\/projects\/[^/]+\//, '');
  let m: RegExpExecArray | null;
  if ((m = /^zones\/[^/]+\/instanceGroupManagers\/[^/]+(?:\/([a-zA-Z]+))?$/.exec(path)))
    return `instanceGroupManagers.${m[1] ?? 'get'}`;
  if (/^global\/instanceTemplates\//.test(path)) return 'instanceTemplates.get';
  if (/^regions\/[^/]+\/instanceTemplates\//.test(path)) return 'regionInstanceTemplates.get';
  if ((m = /^zones\/[^/]+\/instances\/[^/]+(?:\/(setLabels))?$/.exec(path)))
    return `instances.${m[1] ?? (httpMethod === 'DELETE' ? 'delete' : 'get')}`;
  if (/^aggregated\/instances$/.test(path)) return 'instances.aggregatedList';
  if ((m = /^zones\/[^/]+\/operations\/[^/]+?(\/wait)?$/.exec(path)))
    return m[1] ? 'zoneOperations.wait' : 'zoneOperations.get';
  return 'unknown';
}

export async function startFakeGce(opts: {
  state: FakeCompute;
  tokenValid: (token: string) => boolean;
}): Promise<FakeGceServer> {
  const state = opts.state;
  const calls: RecordedCall[] = [];
  const throttles: { left: number; method?: string; status: 429 | 403 }[] = [];
  const losses: { method: string; left: number; holdMs?: number }[] = [];
  let base = '';
  const self: FakeGceServer = {
    endpoint: '',
    state,
    calls,
    latencyMs: 0,
    forbiddenProjects: new Set(),
    count: (method, outcome) => calls.filter((c) => c.method === method && (!outcome || c.outcome === outcome)).length,
    throttle: (n, o = {}) => throttles.push({ left: n, method: o.method, status: o.status ?? 429 }),
    lose: (method, n = 1, holdMs) => losses.push({ method, left: n, holdMs }),
    close: async () => {},
  };

  const zoneUrl = (p: string, z: string) => `${base}/compute/v1/projects/${p}/zones/${z}`;
  const migUrl = (m: FakeMig) => `${zoneUrl(m.project, m.zone)}/instanceGroupManagers/${m.name}`;
  const vmUrl = (vm: { project: string; zone: string; name: string }) =>
    `${zoneUrl(vm.project, vm.zone)}/instances/${vm.name}`;

  const opJson = (op: FakeOperation) => ({
    kind: 'compute#operation',
    id: op.id,
    name: op.name,
    zone: zoneUrl(op.project, op.zone),
    operationType: op.operationType,
    targetLink: op.targetLink,
    status: op.status,
    progress: op.status === 'DONE' ? 100 : 0,
    insertTime: op.insertTime,
    selfLink: `${zoneUrl(op.project, op.zone)}/operations/${op.name}`,
    ...(op.error ? { error: op.error, httpErrorStatusCode: 400, httpErrorMessage: 'BAD REQUEST' } : {}),
  });
  const vmJson = (vm: FakeVm) => ({
    kind: 'compute#instance',
    id: vm.id,
    name: vm.name,
    zone: zoneUrl(vm.project, vm.zone),
    machineType: `${zoneUrl(vm.project, vm.zone)}/machineTypes/${vm.machineType}`,
    status: vm.status,
    labels: vm.labels,
    labelFingerprint: vm.labelFingerprint,
    creationTimestamp: vm.creationTimestamp,
    metadata: {
      items: vm.createdBy
        ? [
            {
              key: 'created-by',
              value: `projects/${vm.createdBy.project}/zones/${vm.createdBy.zone}/instanceGroupManagers/${vm.createdBy.name}`,
            },
          ]
        : [],
    },
    selfLink: vmUrl(vm),
  });
  const managedJson = (r: ManagedRecord) => {
    const vm = state.vms.get(FakeCompute.vmKey(r.mig.project, r.mig.zone, r.name));
    return {
      instance: vmUrl({ project: r.mig.project, zone: r.mig.zone, name: r.name }),
      name: r.name,
      currentAction: r.currentAction,
      ...(vm ? { id: vm.id, instanceStatus: vm.status } : {}),
      ...(r.lastAttempt ? { lastAttempt: { errors: { errors: r.lastAttempt } } } : {}),
    };
  };

  const matchesFilter = (vm: FakeVm, filter: string | null): boolean => {
    if (!filter) return true;
    // GCE: one expression as it is, several each within parentheses (ANDed, or joined by AND).
    const clauses = filter.split(/\s+AND\s+/i);
    return clauses.every((clause) => {
      const m = /^\(?\s*labels\.([a-z0-9_-]+)\s*(=|eq)\s*"?([^")]*)"?\s*\)?$/.exec(clause.trim());
      if (!m || (clauses.length > 1 && !/^\(.*\)$/.test(clause.trim())))
        throw Object.assign(
          new Error(`Invalid value for field 'filter': '${filter}'. Invalid list filter expression.`),
          { status: 400 },
        );
      return vm.labels[m[1]!] === m[3];
    });
  };

  async function route(
    req: IncomingMessage,
    url: URL,
    body: Record<string, unknown>,
  ): Promise<[string, number, unknown]> {
    const path = url.pathname.replace(/^\/compute\/v1\/projects\//, '');
    const q = url.searchParams;
    const get = req.method === 'GET';
    let m: RegExpExecArray | null;
    if ((m = /^([^/]+)\/zones\/([^/]+)\/instanceGroupManagers\/([^/]+)(?:\/([a-zA-Z]+))?$/.exec(path))) {
      const [, p, z, name, verb] = m;
      const mig = state.migs.get(FakeCompute.migKey(p!, z!, name!));
      const method = `instanceGroupManagers.${verb ?? 'get'}`;
      if (!mig) return [method, 404, notFound(`projects/${p}/zones/${z}/instanceGroupManagers/${name}`)];
      if (!verb && get) {
        const tpl = state.templates.get(mig.template)!;
        return [
          method,
          200,
          {
            kind: 'compute#instanceGroupManager',
            id: '77',
            name: mig.name,
            zone: zoneUrl(mig.project, mig.zone),
            baseInstanceName: `gke-${mig.name}`.slice(0, 58),
            instanceTemplate: tpl.region
              ? `${base}/compute/v1/projects/${mig.project}/regions/${tpl.region}/instanceTemplates/${tpl.name}`
              : `${base}/compute/v1/projects/${mig.project}/global/instanceTemplates/${tpl.name}`,
            targetSize: state.targetSize(mig),
            selfLink: migUrl(mig),
          },
        ];
      }
      if (verb === 'createInstances') {
        const names = ((body.instances ?? []) as { name?: string }[]).map((i) => i.name ?? '');
        if (!names.length || names.some((n) => !/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(n)))
          return [
            method,
            400,
            errorDocument(
              400,
              `Invalid value for field 'resource.instances': ${JSON.stringify(names)}.`,
              'invalid',
              'INVALID_ARGUMENT',
            ),
          ];
        const op = state.operation(
          p!,
          z!,
          'compute.instanceGroupManagers.createInstances',
          migUrl(mig),
          q.get('requestId'),
          () => state.accept(mig, names),
        );
        return [method, 200, opJson(op)];
      }
      if (verb === 'deleteInstances') {
        const names = ((body.instances ?? []) as string[]).map((u) => u.split('/').pop()!);
        const op = state.operation(
          p!,
          z!,
          'compute.instanceGroupManagers.deleteInstances',
          migUrl(mig),
          q.get('requestId'),
          () => state.remove(mig, names, body.skipInstancesOnValidationError === true),
        );
        return [method, 200, opJson(op)];
      }
      if (verb === 'listManagedInstances' && req.method === 'POST') {
        const all = state.members(mig);
        const size = Math.min(500, Number(q.get('maxResults') ?? 500));
        const from = Number(q.get('pageToken') ?? 0);
        const page = all.slice(from, from + size);
        return [
          method,
          200,
          {
            managedInstances: page.map(managedJson),
            ...(from + size < all.length ? { nextPageToken: String(from + size) } : {}),
          },
        ];
      }
      return [method, 400, errorDocument(400, `unsupported ${req.method} ${verb}`, 'invalid', 'INVALID_ARGUMENT')];
    }
    if ((m = /^([^/]+)\/(?:global|regions\/([^/]+))\/instanceTemplates\/([^/]+)$/.exec(path)) && get) {
      const [, p, region, name] = m;
      const method = region ? 'regionInstanceTemplates.get' : 'instanceTemplates.get';
      const tpl = state.templates.get(name!);
      if (!tpl || (tpl.region ?? undefined) !== region)
        return [method, 404, notFound(`projects/${p}/instanceTemplates/${name}`)];
      return [
        method,
        200,
        {
          kind: 'compute#instanceTemplate',
          name: tpl.name,
          properties: { ...tpl.extra, machineType: tpl.machineType, labels: tpl.labels },
        },
      ];
    }
    if ((m = /^([^/]+)\/zones\/([^/]+)\/instances\/([^/]+)(?:\/(setLabels))?$/.exec(path))) {
      const [, p, z, name, verb] = m;
      const key = FakeCompute.vmKey(p!, z!, name!);
      const vm = state.vms.get(key);
      const method = `instances.${verb ?? (get ? 'get' : req.method === 'DELETE' ? 'delete' : '?')}`;
      if (!vm) return [method, 404, notFound(`projects/${p}/zones/${z}/instances/${name}`)];
      if (get && !verb) return [method, 200, vmJson(vm)];
      if (req.method === 'DELETE') {
        const op = state.operation(p!, z!, 'delete', vmUrl(vm), q.get('requestId'), () => state.stop(key));
        return [method, 200, opJson(op)];
      }
      if (verb === 'setLabels') {
        if (body.labelFingerprint !== vm.labelFingerprint)
          return [
            method,
            412,
            errorDocument(
              412,
              'Labels fingerprint either invalid or resource labels have changed',
              'conditionNotMet',
              'FAILED_PRECONDITION',
            ),
          ];
        const labels = (body.labels ?? {}) as Record<string, string>;
        const op = state.operation(p!, z!, 'setLabels', vmUrl(vm), q.get('requestId'), () => {
          vm.labels = { ...labels };
          vm.labelFingerprint = Math.random().toString(36).slice(2, 14);
        });
        return [method, 200, opJson(op)];
      }
    }
    if ((m = /^([^/]+)\/aggregated\/instances$/.exec(path)) && get) {
      const p = m[1]!;
      const items: Record<string, { instances?: unknown[]; warning?: unknown }> = {};
      for (const vm of state.vms.values()) {
        if (vm.project !== p || state.unreachable.has(vm.zone) || !matchesFilter(vm, q.get('filter'))) continue;
        (items[`zones/${vm.zone}`] ??= { instances: [] }).instances!.push(vmJson(vm));
      }
      // As GCE answers for a zone it cannot reach: a warning in its scope, the rest of the list intact.
      for (const zone of state.unreachable)
        items[`zones/${zone}`] = {
          warning: {
            code: 'UNREACHABLE',
            message: `Scope 'zones/${zone}' is unreachable`,
            data: [{ key: 'scope', value: `zones/${zone}` }],
          },
        };
      return ['instances.aggregatedList', 200, { kind: 'compute#instanceAggregatedList', items }];
    }
    if ((m = /^([^/]+)\/zones\/([^/]+)\/operations\/([^/]+?)(\/wait)?$/.exec(path))) {
      const [, p, z, name, wait] = m;
      const method = wait ? 'zoneOperations.wait' : 'zoneOperations.get';
      let op = state.operations.get(name!);
      if (!op || op.project !== p || op.zone !== z)
        return [method, 404, notFound(`projects/${p}/zones/${z}/operations/${name}`)];
      // wait: returns when DONE or after a while ("best effort", GCE: up to 2 minutes; here 2 s).
      const until = Date.now() + 2_000;
      while (wait && op.status !== 'DONE' && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 10));
        await state.step();
        op = state.operations.get(name!)!;
      }
      return [method, 200, opJson(op)];
    }
    return ['unknown', 404, notFound(url.pathname)];
  }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', base);
    const body = (raw ? JSON.parse(raw) : {}) as Record<string, unknown>;
    if (self.latencyMs) await new Promise((r) => setTimeout(r, self.latencyMs));
    await state.step();
    const requestId = url.searchParams.get('requestId') ?? undefined;
    const filter = url.searchParams.get('filter') ?? undefined;
    const record = (method: string, outcome: RecordedCall['outcome']) =>
      calls.push({
        method,
        outcome,
        ...(requestId ? { requestId } : {}),
        ...(raw ? { body } : {}),
        ...(filter !== undefined ? { filter } : {}),
      });
    const method = methodOf(req.method ?? 'GET', url.pathname);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!bearer || !opts.tokenValid(bearer)) {
      record(method, 'unauthorized');
      return json(
        res,
        401,
        errorDocument(
          401,
          'Request had invalid authentication credentials. Expected OAuth 2 access token.',
          'authError',
          'UNAUTHENTICATED',
        ),
      );
    }
    const project = /^\/compute\/v1\/projects\/([^/]+)\//.exec(url.pathname)?.[1];
    if (project && self.forbiddenProjects.has(project)) {
      record(method, 'error');
      return json(
        res,
        403,
        errorDocument(
          403,
          `Required 'compute.instances.list' permission for 'projects/${project}'`,
          'forbidden',
          'PERMISSION_DENIED',
        ),
      );
    }
    const t = throttles.find((x) => x.left > 0 && (!x.method || x.method === method));
    if (t) {
      t.left--;
      record(method, 'throttled');
      return json(
        res,
        t.status,
        errorDocument(
          t.status,
          `Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service 'compute.googleapis.com'.`,
          'rateLimitExceeded',
          t.status === 429 ? 'RESOURCE_EXHAUSTED' : 'PERMISSION_DENIED',
          'RATE_LIMIT_EXCEEDED',
        ),
      );
    }
    let result: [string, number, unknown];
    try {
      result = await route(req, url, body);
    } catch (e) {
      record(method, 'error');
      const status = (e as { status?: number }).status ?? 500;
      const bad = status === 400;
      return json(
        res,
        status,
        errorDocument(
          status,
          (e as Error).message,
          bad ? 'invalid' : 'backendError',
          bad ? 'INVALID_ARGUMENT' : 'INTERNAL',
        ),
      );
    }
    const loss = losses.find((l) => l.left > 0 && l.method === method);
    if (loss) {
      loss.left--;
      if (loss.holdMs) {
        const gone = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), loss.holdMs);
          res.once('close', () => {
            clearTimeout(timer);
            resolve(true);
          });
        });
        if (!gone) {
          record(method, 'answered');
          return json(res, result[1], result[2]);
        }
      }
      record(method, 'lost');
      req.socket.destroy();
      return;
    }
    record(method, result[1] < 400 ? 'answered' : 'error');
    json(res, result[1], result[2]);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent)
        json(
          res,
          500,
          errorDocument(500, `fake GCE: ${e instanceof Error ? e.message : String(e)}`, 'backendError', 'INTERNAL'),
        );
      else res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  self.endpoint = base;
  const ticker = setInterval(() => void state.step().catch(() => {}), 25);
  self.close = () =>
    new Promise<void>((resolve) => {
      clearInterval(ticker);
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return self;
}
