import { NETWORK_ERROR, TelestackError } from './errors.js';

/** The read-consistency bookmark: carried opaquely from each response to the next request. */
export const BOOKMARK_HEADER = 'x-telestack-bookmark';
/** The gateway's id of each request (also in its error bodies and every log line it writes). */
export const REQUEST_ID_HEADER = 'x-request-id';

/** The part of `fetch` the SDK uses (browsers, Node >= 18 and React Native all have it). */
export interface FetchResponse {
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}
export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body?: unknown },
) => Promise<FetchResponse>;

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** false for the auth endpoints that take no access token (signup, signin, refresh) */
  auth?: boolean;
}

export interface HttpReply {
  status: number;
  headers: FetchResponse['headers'];
  body: unknown;
}

/** Supplies the bearer token and renews it when the gateway says it expired. */
export interface TokenSource {
  accessToken(): Promise<string | null>;
  expired(token: string): Promise<void>;
}

/** JSON over fetch against the gateway: errors become TelestackError, the bookmark rides along. */
export class Http {
  private bookmark: string | null = null;
  tokens: TokenSource | null = null;

  constructor(
    readonly baseUrl: string,
    /** @internal also used for uploads to presigned URLs */
    readonly fetchImpl: FetchLike,
  ) {}

  async request(req: HttpRequest): Promise<HttpReply> {
    const useAuth = req.auth !== false;
    const token = useAuth && this.tokens ? await this.tokens.accessToken() : null;
    const first = await this.send(req, token);
    if (first.status === 401 && token && this.tokens && errorCode(first.body) === 'token_expired') {
      await this.tokens.expired(token);
      return this.check(await this.send(req, await this.tokens.accessToken()));
    }
    return this.check(first);
  }

  private async send(req: HttpRequest, token: string | null): Promise<HttpReply> {
    const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
    if (req.body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    if (this.bookmark) headers[BOOKMARK_HEADER] = this.bookmark;
    let response: FetchResponse;
    try {
      response = await this.fetchImpl(this.baseUrl + req.path, {
        method: req.method,
        headers,
        body: req.body === undefined ? undefined : JSON.stringify(req.body),
      });
    } catch (err) {
      throw new TelestackError(NETWORK_ERROR, 0, `${req.method} ${req.path}: ${(err as Error)?.message ?? err}`);
    }
    const bookmark = response.headers.get(BOOKMARK_HEADER);
    if (bookmark) this.bookmark = bookmark;
    const text = await response.text();
    let body: unknown = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    return { status: response.status, headers: response.headers, body };
  }

  private check(reply: HttpReply): HttpReply {
    if (reply.status < 400) return reply;
    const err = (reply.body as { error?: { code?: unknown; message?: unknown; request_id?: unknown } } | null)
      ?.error;
    const code = typeof err?.code === 'string' ? err.code : `http_${reply.status}`;
    const message = typeof err?.message === 'string' ? err.message : `HTTP ${reply.status}`;
    // the body's id first; the header still names the request when a proxy answered with HTML
    const requestId = typeof err?.request_id === 'string' ? err.request_id : reply.headers.get(REQUEST_ID_HEADER);
    throw new TelestackError(code, reply.status, message, requestId || null);
  }
}

function errorCode(body: unknown): string | undefined {
  const code = (body as { error?: { code?: unknown } } | null)?.error?.code;
  return typeof code === 'string' ? code : undefined;
}
