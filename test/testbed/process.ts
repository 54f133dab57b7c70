// Child processes of the testbed. Every child is started under `setpriv --pdeathsig KILL`, so the
// kernel kills it if the test runner dies without cleaning up (SIGKILL, OOM): no orphans, ever.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { once } from 'node:events';

export interface Child {
  readonly name: string;
  readonly logFile: string;
  readonly process: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function startChild(
  name: string,
  command: string,
  args: string[],
  logFile: string,
  env: NodeJS.ProcessEnv = process.env,
): Child {
  const log = createWriteStream(logFile, { flags: 'a' });
  const proc = spawn('setpriv', ['--pdeathsig', 'KILL', '--', command, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout?.pipe(log);
  proc.stderr?.pipe(log);
  let exited = false;
  proc.once('exit', () => {
    exited = true;
  });
  return {
    name,
    logFile,
    process: proc,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (exited || proc.exitCode !== null || proc.signalCode !== null) return;
      const done = once(proc, 'exit');
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await done;
      clearTimeout(timer);
    },
  };
}

/** Last lines of a child's log, for error messages that say why a component did not come up. */
export function tail(file: string, lines = 25): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** A free loopback port. The tiny window between close and reuse is acceptable for tests. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (address === null || typeof address === 'string') throw new Error('could not allocate a loopback port');
  return address.port;
}

/** Thrown from a `waitFor` check to stop waiting at once (a component died). */
export class Fatal extends Error {}

/** Polls `check` until it returns true; on timeout throws with `describe()` for context. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  describe: () => string = () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch (e) {
      if (e instanceof Fatal) throw e;
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${describe()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
