import type { NextFunction, Request, Response } from 'express';
import { MirrorgateError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import { sendError } from '../http/error-envelope.js';
import { parseAuthorization } from './authorization-header.js';
import type { Authenticator, Principal } from './authenticator.js';

/** Bearer tokens the mirror issued itself (the optional token flow). */
export interface BearerVerifier {
  /** The principal a token stands for; UNAUTHORIZED when it is invalid or expired. */
  verify(token: string): Principal;
  /** The `WWW-Authenticate` challenge sending clients to the token endpoint. */
  challenge(req: Request, error?: 'invalid_token'): string;
}

export interface AuthMiddlewareDeps {
  authenticator: Authenticator;
  realm: string;
  logger: Logger;
  bearer?: BearerVerifier | undefined;
}

/**
 * The HTTP edge of authentication: reads the `Authorization` header, asks the authenticator, and either
 * passes the request on (principal in `res.locals.principal`) or answers 401 UNAUTHORIZED with a
 * `WWW-Authenticate` challenge (429 with `Retry-After` when the client address or the user spent its budget
 * of failed logins, or too many checks are already queued).
 */
export function authMiddleware(deps: AuthMiddlewareDeps) {
  const basicChallenge = `Basic realm="${deps.realm}"`;
  const challengeFor = (req: Request, tokenRejected: boolean): string =>
    deps.bearer ? deps.bearer.challenge(req, tokenRejected ? 'invalid_token' : undefined) : basicChallenge;

  return (req: Request, res: Response, next: NextFunction): void => {
    let tokenRejected = false;
    let header: ReturnType<typeof parseAuthorization>;
    try {
      header = parseAuthorization(req.headers.authorization);
    } catch (err) {
      res.setHeader('www-authenticate', challengeFor(req, false));
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
      if (header?.scheme === 'bearer') {
        if (!deps.bearer) throw new MirrorgateError('UNAUTHORIZED', 'bearer tokens are not accepted here');
        tokenRejected = true;
        const principal = deps.bearer.verify(header.token);
        tokenRejected = false;
        return principal;
      }
      return deps.authenticator.authenticate(header, req.socket.remoteAddress);
    };
    run().then(
      (principal) => {
        res.locals.principal = principal;
        next();
      },
      (err: unknown) => {
        if (err instanceof MirrorgateError && err.code === 'UNAUTHORIZED') res.setHeader('www-authenticate', challengeFor(req, tokenRejected));
        sendError(res, err, deps.logger);
      },
    );
  };
}
