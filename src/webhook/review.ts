import { ERROR_CODES, fail, type ErrorCode } from '../common/errors.js';
import { ADMISSION_API_VERSION, type AdmissionRequest, type AdmissionResponse, type AdmissionReviewResponse } from './admission-types.js';

export type DecodedReview =
  | { ok: true; request: AdmissionRequest }
  /** `uid` is present when there is one to echo; without it the edge answers a bare HTTP error. */
  | { ok: false; uid: string | undefined; code: ErrorCode; message: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Finds the uid even in a review we refuse, so the refusal can still be an AdmissionReview. */
export function uidOf(body: unknown): string | undefined {
  if (!isObject(body) || !isObject(body.request)) return undefined;
  const uid = body.request.uid;
  return typeof uid === 'string' && uid.length > 0 && uid.length <= 128 ? uid : undefined;
}

/** Decodes an AdmissionReview body: the request, or why it cannot be admitted (with its uid, when it has one). */
export function decodeReview(body: unknown): DecodedReview {
  const uid = uidOf(body);
  const bad = (code: ErrorCode, message: string): DecodedReview => ({ ok: false, uid, code, message });
  if (!isObject(body)) return bad('REVIEW_MALFORMED', 'the body must be a JSON object');
  if (body.kind !== 'AdmissionReview') return bad('REVIEW_MALFORMED', `kind must be AdmissionReview, not ${JSON.stringify(body.kind)}`);
  if (body.apiVersion !== ADMISSION_API_VERSION) {
    return bad('REVIEW_UNSUPPORTED', `apiVersion ${JSON.stringify(body.apiVersion)} is not supported; register the webhook with admissionReviewVersions: [v1]`);
  }
  if (!isObject(body.request)) return bad('REVIEW_MALFORMED', 'request is missing');
  if (uid === undefined) return bad('REVIEW_MALFORMED', 'request.uid is missing');
  const r = body.request;
  if (r.object !== undefined && r.object !== null && !isObject(r.object)) return bad('REVIEW_MALFORMED', 'request.object must be an object');
  if (r.oldObject !== undefined && r.oldObject !== null && !isObject(r.oldObject)) return bad('REVIEW_MALFORMED', 'request.oldObject must be an object');
  return { ok: true, request: r as unknown as AdmissionRequest };
}

/** The response envelope every constructor below (allowed, patched, rejected) builds on. */
function review(response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

function withWarnings(response: AdmissionResponse, warnings: readonly string[]): AdmissionResponse {
  return warnings.length > 0 ? { ...response, warnings: [...warnings] } : response;
}

export function allowed(uid: string, warnings: readonly string[] = []): AdmissionReviewResponse {
  return review(withWarnings({ uid, allowed: true }, warnings));
}

export function patched(uid: string, patch: readonly unknown[], warnings: readonly string[] = []): AdmissionReviewResponse {
  if (patch.length === 0) return allowed(uid, warnings);
  const encoded = Buffer.from(JSON.stringify(patch)).toString('base64');
  return review(withWarnings({ uid, allowed: true, patchType: 'JSONPatch', patch: encoded }, warnings));
}

/** A refusal of a request we cannot read (never used for internal failures, which fail open). */
export function rejected(uid: string, code: ErrorCode, message: string): AdmissionReviewResponse {
  return review({ uid, allowed: false, status: { code: ERROR_CODES[code].status, message: `${code}: ${message}`, reason: 'BadRequest' } });
}

/** For the HTTP edge: the error body when there is no uid to echo. */
export function bareError(code: ErrorCode, message: string): { status: number; body: { code: ErrorCode; message: string } } {
  const err = fail(code, message);
  return { status: err.status, body: { code: err.code, message: err.message } };
}
