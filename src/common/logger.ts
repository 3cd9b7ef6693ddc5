import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * Paths pino censors wherever they appear in a log object. Credentials must never reach a log line,
 * whatever the caller passes (request headers, upstream responses, configuration dumps).
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'headers.authorization',
  'headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  'authorization',
  'password',
  'token',
  'access_token',
  'refresh_token',
  '*.password',
  '*.token',
  '*.authorization',
  'credentials',
  '*.credentials',
];

export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream } & LoggerOptions = {}): Logger {
  const { destination, level, ...rest } = options;
  const opts: LoggerOptions = {
    level: level ?? process.env.MIRRORGATE_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    ...rest,
  };
  return destination ? pino(opts, destination) : pino(opts);
}

/** A logger that writes nowhere, for tests that do not inspect logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
