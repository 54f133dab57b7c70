// One pino logger for the process. Child loggers carry pod / instance / node / class keys, so every
// line about an object can be found by that object's name. Secrets never reach a log line: known
// credential fields are redacted wherever they appear.
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export function createLogger(
  level: string = process.env.IPP_LOG_LEVEL ?? 'info',
  destination?: DestinationStream,
): Logger {
  const options = {
    level,
    base: { component: 'ipp' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        '*.token',
        '*.password',
        '*.secretAccessKey',
        '*.sessionToken',
        '*.authorization',
        '*.Authorization',
        '*.headers.authorization',
        'credentials',
        '*.credentials',
        '*.caData',
        '*.keyData',
        '*.certData',
        '*.userData',
      ],
      censor: '[redacted]',
    },
  };
  if (destination) return pino(options, destination);
  // stdout written asynchronously: one synchronous write per line was ~2 % of the controller's busy time
  // in a profiled 1,000-pod burst. Lines queued meanwhile go out together. pino writes what is queued when the
  // process exits, and the fatal path (main.ts) waits for the write under way too; a SIGKILL or a V8
  // abort (out of memory) can lose the last lines.
  const stdout = pino.destination({ dest: 1, sync: false, maxLength: LOG_BUFFER_MAX_BYTES });
  const logger = pino(options, stdout);
  reportDrops(stdout, logger);
  return logger;
}

/**
 * What stdout may hold queued. A log pipe that stops draining (a stalled container runtime, a
 * suspended reader) would otherwise grow the queue until the memory limit kills the controller:
 * lines past this are dropped, and counted.
 */
export const LOG_BUFFER_MAX_BYTES = 8 << 20;

/** Says once a second, while lines were dropped, how many; the report counts itself if it is dropped too. */
function reportDrops(stdout: ReturnType<typeof pino.destination>, logger: Logger): void {
  let dropped = 0;
  stdout.on('drop', () => dropped++);
  setInterval(() => {
    if (!dropped) return;
    const told = dropped;
    logger.warn(
      { dropped: told },
      `stdout did not take the log as fast as it was written: ${told} lines dropped (over ${LOG_BUFFER_MAX_BYTES >> 20} MiB queued)`,
    );
    if (dropped === told) dropped = 0;
  }, 1_000).unref();
}

/**
 * A child logger made when first used. pino serialises (and redacts) a child's bindings as it is made:
 * a child per reconcile was ~1 % of the controller's CPU in a profiled 1,000-pod burst, and most
 * reconciles log nothing.
 */
export function lazyChild(parent: Logger, bindings: Record<string, unknown>): Logger {
  let child: Logger | undefined;
  const real = () => (child ??= parent.child(bindings));
  return new Proxy({} as Logger, {
    get(_target, key) {
      const c = real();
      const value: unknown = Reflect.get(c, key, c);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(c) : value;
    },
    set(_target, key, value) {
      return Reflect.set(real(), key, value);
    },
  });
}
