// kube-apiserver's own /metrics, read with a kubeconfig's credentials: what benchmarks count requests
// and closed watchers with, and what e2e tests read to see which admission webhooks the server called.
import { request, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/** kube-apiserver's /metrics, as text. */
export async function apiserverMetrics(kc: KubeConfig): Promise<string> {
  const server = new URL(kc.getCurrentCluster()!.server);
  const opts: RequestOptions = { hostname: server.hostname, port: server.port, path: '/metrics', method: 'GET' };
  await kc.applyToHTTPSOptions(opts);
  return new Promise<string>((resolve, reject) => {
    const req = request(opts, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`/metrics: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The sum of a metric's samples, in /metrics text, whose labels include `labels`. */
export function sumOf(metrics: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
