/**
 * Every failure the SDK reports: the gateway's error `code` and HTTP `status`, or a client-side code.
 * `requestId` is the gateway's id of the refused request (null when no answer came), the one its
 * logs carry: an app shows or reports it so an operator finds that request.
 */
export class TelestackError extends Error {
  readonly code: string;
  readonly status: number;
  readonly requestId: string | null;

  constructor(code: string, status: number, message: string, requestId: string | null = null) {
    super(message);
    this.name = 'TelestackError';
    this.code = code;
    this.status = status;
    this.requestId = requestId;
  }
}

/** Client-side codes (status 0): no answer from the server, or a misuse of the SDK. */
export const NETWORK_ERROR = 'network_error';
export const SIGNED_OUT = 'signed_out';

/** The gateway's refresh answers that mean the session is over (see docs/api.md, Auth). */
export const SESSION_ENDED_CODES: ReadonlySet<string> = new Set(['session_expired', 'token_reuse_detected']);

export function isNetworkError(err: unknown): boolean {
  return err instanceof TelestackError && err.code === NETWORK_ERROR;
}

/** `err` as the SDK reports it: a TelestackError as is, anything else (a bug, a malformed answer) as `internal`. */
export function asTelestackError(err: unknown): TelestackError {
  return err instanceof TelestackError ? err : new TelestackError('internal', 0, String((err as Error)?.message ?? err));
}
