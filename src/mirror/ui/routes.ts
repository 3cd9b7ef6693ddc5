import type { Express, Request, Response } from 'express';
import type { Logger } from '../../common/logger.js';
import type { AccessRules } from '../auth/access.js';
import type { Principal } from '../auth/authenticator.js';
import { sendError } from '../http/error-envelope.js';
import type { StatusService } from '../status/status-report.js';
import { PAGE_HTML } from './assets/page-html.js';
import { PAGE_CSS } from './assets/page-css.js';
import { PAGE_JS } from './assets/page-js.js';

export interface StatusPageDeps {
  status: StatusService;
  access: AccessRules;
  logger: Logger;
}

/** Everything the page loads comes from here; nothing inline, nothing from elsewhere. */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/**
 * The status page's HTTP edge: the page, its script and style sheet (served from memory), and the JSON it
 * reads. Authentication is the registry API's (the app applies it to /ui too).
 */
export function registerStatusPage(app: Express, deps: StatusPageDeps): void {
  const asset = (type: string, text: string) => {
    const body = Buffer.from(text);
    return (req: Request, res: Response): void => {
      res.locals.kind = 'ui';
      res.status(200).set({ ...SECURITY_HEADERS, 'content-type': type, 'content-length': String(body.length), 'cache-control': 'no-cache' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
  };
  // Express matches `/ui` and `/ui/` alike; the page names its assets by absolute path.
  app.get('/ui', asset('text/html; charset=utf-8', PAGE_HTML));
  app.get('/ui/status.css', asset('text/css; charset=utf-8', PAGE_CSS));
  app.get('/ui/status.js', asset('text/javascript; charset=utf-8', PAGE_JS));
  app.get('/ui/api/status', (req: Request, res: Response) => {
    res.locals.kind = 'ui';
    const principal = res.locals.principal as Principal | undefined;
    deps.status.report((target) => deps.access.allows(principal, target, 'pull')).then(
      (report) => {
        const body = Buffer.from(JSON.stringify(report));
        res.status(200).set({ ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': String(body.length), 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => sendError(res, err, deps.logger),
    );
  });
}
