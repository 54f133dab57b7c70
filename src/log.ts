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
  // stdout written asynchronously: one synchronous write per line was ~2 % of the controller's busy time
  // in a profiled 1,000-pod burst. Lines queued meanwhile go out together. pino writes what is queued when the
  // process exits, and the fatal path (main.ts) waits for the write under way too; a SIGKILL or a V8
  // abort (out of memory) can lose the last lines.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
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
