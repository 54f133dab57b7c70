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
    // Not pino's `redact`: its paths are parsed again for every value of every line (a tenth of what
    // a 1,000-pod burst allocated); these checks allocate nothing for a line with no credential.
    formatters: { log: redact, bindings: redact },
    // Objects interpolated into the message (`%j`, `%o`) are redacted too; the merging object, when
    // there is one, is left to formatters.log.
    hooks: {
      logMethod(this: Logger, args: Parameters<Logger['info']>, method: (...a: unknown[]) => void) {
        const from = typeof args[0] === 'string' ? 1 : 2;
        for (let i = from; i < args.length; i++) {
          const a: unknown = args[i];
          if (isObject(a)) args[i] = redact(a);
        }
        method.apply(this, args);
      },
    },
  };
  if (destination) return redactingChildren(pino(options, destination));
  // stdout written asynchronously: one synchronous write per line was ~2 % of the controller's busy time
  // in a profiled 1,000-pod burst. Lines queued meanwhile go out together. pino writes what is queued when the
  // process exits, and the fatal path (main.ts) waits for the write under way too; a SIGKILL or a V8
  // abort (out of memory) can lose the last lines.
  const stdout = pino.destination({ dest: 1, sync: false, maxLength: LOG_BUFFER_MAX_BYTES });
  const logger = redactingChildren(pino(options, stdout));
  reportDrops(stdout, logger);
  return logger;
}

/**
 * pino passes only the root's bindings through `formatters.bindings`, not a child's: every child (and
 * its children, which inherit these methods) has its bindings redacted here, and bindings set later.
 * A child given a `formatters.log` of its own would replace the root's, redaction included: its
 * output is redacted after it.
 */
function redactingChildren(logger: Logger): Logger {
  const { child, setBindings } = logger;
  logger.child = function (this: Logger, bindings, options) {
    const own = options?.formatters?.log;
    const safe = own
      ? {
          ...options,
          formatters: { ...options.formatters, log: (o: object) => redact(own(o)) },
        }
      : options;
    return child.call(this, redact(bindings), safe);
  } as Logger['child'];
  logger.setBindings = function (this: Logger, bindings) {
    setBindings.call(this, redact(bindings));
  };
  return logger;
}

/** Keys whose values are credentials: a cloud's keys, a kubeconfig's, HTTP authorization, user data. */
const SECRET_KEYS = new Set([
  'token',
  'password',
  'secretAccessKey',
  'sessionToken',
  'authorization',
  'Authorization',
  'credentials',
  'caData',
  'keyData',
  'certData',
  'userData',
]);
export const CENSOR = '[redacted]';

/**
 * A logged object with every credential censored: a secret key at the top or one level down, and
 * `headers.authorization` one level down (an error's request). The caller's objects are never changed:
 * what is redacted is a copy, made only when something is; an error stays an error (its message,
 * stack and type kept).
 */
export function redact<T extends object>(obj: T): T {
  let out: Record<string, unknown> | undefined;
  for (const key in obj) {
    if (!Object.hasOwn(obj, key)) continue;
    const value: unknown = obj[key];
    const next = SECRET_KEYS.has(key) ? CENSOR : isObject(value) ? redactLevel(value) : value;
    if (next !== value) (out ??= copy(obj))[key] = next;
  }
  return (out as T | undefined) ?? obj;
}

function redactLevel(value: object): object {
  let out: Record<string, unknown> | undefined;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const v: unknown = (value as Record<string, unknown>)[key];
    let next = v;
    if (SECRET_KEYS.has(key)) next = CENSOR;
    else if (
      key === 'headers' &&
      isObject(v) &&
      (Object.hasOwn(v, 'authorization') || Object.hasOwn(v, 'Authorization'))
    )
      next = {
        ...v,
        ...(Object.hasOwn(v, 'authorization') ? { authorization: CENSOR } : {}),
        ...(Object.hasOwn(v, 'Authorization') ? { Authorization: CENSOR } : {}),
      };
    if (next !== v) (out ??= copy(value))[key] = next;
  }
  return out ?? value;
}

/** An object whose keys are looked at: not an array, nor bytes (a buffer's every index would be walked). */
const isObject = (v: unknown): v is object =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);

/**
 * A shallow copy with the same prototype and own properties, each a plain writable value: read on the
 * copy, an error's `stack` accessor would find no stack, and a frozen object's credential could not be
 * censored (the write would throw, and take the line and the reconcile that logged it with it).
 */
function copy(o: object): Record<string, unknown> {
  const out = Object.create(Object.getPrototypeOf(o) as object | null) as Record<string, unknown>;
  for (const key of Reflect.ownKeys(o)) {
    const { enumerable } = Object.getOwnPropertyDescriptor(o, key)!;
    Object.defineProperty(out, key, { value: Reflect.get(o, key), enumerable, writable: true, configurable: true });
  }
  return out;
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
