/** Every failure the SDK reports: the gateway's error `code` and HTTP `status`, or a client-side code. */
export class TelestackError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, status: number, message: string) {
    super(message);
    this.name = 'TelestackError';
    this.code = code;
    this.status = status;
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
