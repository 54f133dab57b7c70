// moto's EC2 server (PyPI, pinned in requirements.txt): the real EC2 Query API on loopback.
import { join } from 'node:path';
import { freePort, startChild, tail, waitFor, type Child } from './process.ts';

export interface Moto {
  endpoint: string;
  child: Child;
  /** Forgets every resource: POST /moto-api/reset. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startMoto(assets: string, logDir: string): Promise<Moto> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child = startChild(
    'moto',
    join(assets, 'venv', 'bin', 'moto_server'),
    ['-H', '127.0.0.1', '-p', String(port)],
    join(logDir, 'moto.log'),
    { ...process.env, MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION: 'true' },
  );
  await waitFor(
    'moto_server',
    async () => (await fetch(`${endpoint}/moto-api/`)).ok,
    60_000,
    () => tail(child.logFile),
  ).catch(async (e: unknown) => {
    await child.stop();
    throw e;
  });
  return {
    endpoint,
    child,
    async reset() {
      const r = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!r.ok) throw new Error(`moto reset failed: HTTP ${r.status}`);
    },
    stop: () => child.stop(),
  };
}
