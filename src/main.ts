// ipp controller entry point: flags → logger → operator, with SIGTERM/SIGINT as a clean stop.
import { CommanderError } from 'commander';
import { parseOptions } from './config/options.ts';
import { createLogger } from './log.ts';
import { runOperator } from './operator.ts';

let opts;
try {
  opts = parseOptions(process.argv.slice(2));
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode);
  throw e;
}
const logger = createLogger(opts.logLevel);
const stop = new AbortController();
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    logger.info({ signal: sig }, 'shutting down: finishing in-flight work, releasing the lease');
    stop.abort();
    // A second signal, or a shutdown that hangs, ends the process anyway.
    setTimeout(() => process.exit(1), 25_000).unref();
    process.once(sig, () => process.exit(1));
  });
}
try {
  await runOperator(opts, stop.signal, logger);
  logger.info('stopped');
} catch (e) {
  logger.fatal({ err: e }, 'controller failed');
  // Exit now: the informers still running would keep a process that will never be ready (nor lead,
  // nor serve the webhook) alive forever; exiting lets its Deployment start a fresh one. Once the log
  // is written (stdout is written asynchronously), or after a second whatever happens to it.
  setTimeout(() => process.exit(1), 1_000);
  logger.flush(() => process.exit(1));
}
