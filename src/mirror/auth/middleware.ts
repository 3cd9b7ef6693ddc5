import type { NextFunction, Request, Response } from 'express';
import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { sendError } from '../http/error-envelope.js';
import { parseAuthorization } from './authorization-header.js';
import type { Authenticator, Principal } from './authenticator.js';

export interface AuthMiddlewareDeps {
  authenticator: Authenticator;
  realm: string;
  logger: Logger;
}

/**
 * The HTTP edge of authentication: reads the `Authorization` header, asks the authenticator, and either
 * passes the request on (principal in `res.locals.principal`) or answers 401 UNAUTHORIZED with a
 * `WWW-Authenticate` challenge (429 with `Retry-After` when the client address or the user spent its budget
 * of failed logins, or too many checks are already queued).
 */
export function authMiddleware(deps: AuthMiddlewareDeps) {
  const challenge = `Basic realm="${deps.realm}"`;

  return (req: Request, res: Response, next: NextFunction): void => {
    let header: ReturnType<typeof parseAuthorization>;
    try {
      header = parseAuthorization(req.headers.authorization);
    } catch (err) {
      res.setHeader('www-authenticate', challenge);
      sendError(res, err, deps.logger);
      return;
    }
    // Recently verified credentials: answer synchronously, without bcrypt or a promise.
    const known = header?.scheme === 'basic' ? deps.authenticator.cached(header) : undefined;
    if (known) {
      res.locals.principal = known;
      next();
      return;
    }
    const run = async (): Promise<Principal> => {
      // The mirror issues no tokens: Basic credentials on every request (cheap, thanks to the verification cache).
      if (header?.scheme === 'bearer') throw new MirrorgateError('UNAUTHORIZED', 'bearer tokens are not accepted here');
      return deps.authenticator.authenticate(header, req.socket.remoteAddress);
    };
    run().then(
      (principal) => {
        res.locals.principal = principal;
        next();
      },
      (err: unknown) => {
        if (err instanceof MirrorgateError && err.code === 'UNAUTHORIZED') res.setHeader('www-authenticate', challenge);
        sendError(res, err, deps.logger);
      },
    );
  };
}
