// A fake GCE metadata server, the one GKE Workload Identity puts in every pod's way: it answers
// the Google auth library's probe, the project id and the service account's access token. The
// library finds it through GCE_METADATA_HOST, exactly as in a pod, so no key file is involved.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeMetadata {
  /** host:port, the value of GCE_METADATA_HOST. */
  host: string;
  /** Whether this server handed out that access token (the fake Compute Engine accepts only those). */
  issued(token: string): boolean;
  /** Token requests served. */
  tokenRequests: number;
  close(): Promise<void>;
}

export async function startFakeMetadata(project: string): Promise<FakeMetadata> {
  const tokens = new Set<string>();
  const self = { tokenRequests: 0 } as FakeMetadata;
  const server: Server = createServer((req, res) => {
    const reply = (status: number, body: string, type = 'application/text') => {
      res.writeHead(status, { 'content-type': type, 'Metadata-Flavor': 'Google' });
      res.end(body);
    };
    // The real server refuses requests without this header (it keeps SSRF from reading tokens).
    if (req.headers['metadata-flavor'] !== 'Google') return reply(403, 'Missing Metadata-Flavor:Google header.');
    const path = (req.url ?? '').split('?')[0];
    if (path === '/computeMetadata/v1/instance' || path === '/computeMetadata/v1/instance/') return reply(200, '');
    if (path === '/computeMetadata/v1/project/project-id') return reply(200, project);
    if (path === '/computeMetadata/v1/instance/service-accounts/default/token') {
      self.tokenRequests++;
      const current = `ya29.fake-${randomBytes(12).toString('hex')}`;
      tokens.add(current);
      return reply(
        200,
        JSON.stringify({ access_token: current, expires_in: 3599, token_type: 'Bearer' }),
        'application/json',
      );
    }
    if (path === '/computeMetadata/v1/universe/universe-domain') return reply(200, 'googleapis.com');
    return reply(404, 'Not Found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  self.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  self.issued = (t) => tokens.has(t);
  self.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return self;
}
