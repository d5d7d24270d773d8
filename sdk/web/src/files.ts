/**
 * Files in the stack's S3 bucket, through the gateway's presigned URLs (bytes never pass through the
 * gateway): an upload asks `POST /v1/storage/upload-url` for a presigned PUT signed for the blob's exact
 * size and type, then PUTs the bytes straight to the bucket; a download URL is
 * `POST /v1/storage/download-url`'s presigned GET.
 */
import type { TelestackClient } from './client.js';
import { NETWORK_ERROR, TelestackError } from './errors.js';

/** A Blob/File (browsers, Node >= 18, React Native): the PUT body, `size` bytes long. */
export interface BlobLike {
  readonly size: number;
  readonly type?: string;
}

export interface UploadOptions {
  /** the Content-Type the signature pins (default: the blob's type, else application/octet-stream) */
  contentType?: string;
  /** progress in bytes; with XMLHttpRequest (browsers, React Native) during the upload, otherwise at the end */
  onProgress?: (loaded: number, total: number) => void;
}

export interface UploadResult {
  key: string;
  contentType: string;
  size: number;
}

/** The gateway's answer: a presigned PUT and the headers to send with it. */
interface SignedUpload {
  url: string;
  headers: Record<string, string>;
  key: string;
  content_type: string;
  size: number;
}

interface XhrLike {
  open(method: string, url: string): void;
  setRequestHeader(name: string, value: string): void;
  send(body: unknown): void;
  status: number;
  responseText: string;
  upload?: { onprogress: ((e: { loaded: number; total: number }) => void) | null };
  onload: (() => void) | null;
  onerror: (() => void) | null;
}

interface Sent {
  status: number;
  text: string;
}

export async function uploadFile(client: TelestackClient, key: string, blob: BlobLike, options: UploadOptions = {}): Promise<UploadResult> {
  const contentType = options.contentType || blob.type || 'application/octet-stream';
  const reply = await client.http.request({
    method: 'POST',
    path: '/v1/storage/upload-url',
    body: { key, content_type: contentType, size: blob.size },
  });
  const signed = reply.body as SignedUpload;
  // Content-Length is signed too; every client sends the body's own length, which is blob.size
  const XhrCtor = (globalThis as { XMLHttpRequest?: new () => XhrLike }).XMLHttpRequest;
  const { status, text } = options.onProgress && XhrCtor
    ? await putWithXhr(XhrCtor, signed, blob, options.onProgress)
    : await putWithFetch(client, signed, blob);
  if (status < 200 || status >= 300) {
    throw new TelestackError('upload_refused', status, `the storage server refused the upload: ${s3Code(text)}`);
  }
  options.onProgress?.(blob.size, blob.size);
  return { key: signed.key, contentType: signed.content_type, size: signed.size };
}

export async function getDownloadURL(client: TelestackClient, key: string): Promise<string> {
  const reply = await client.http.request({ method: 'POST', path: '/v1/storage/download-url', body: { key } });
  return (reply.body as { url: string }).url;
}

async function putWithFetch(client: TelestackClient, signed: SignedUpload, blob: BlobLike): Promise<Sent> {
  try {
    const response = await client.http.fetchImpl(signed.url, { method: 'PUT', headers: { ...signed.headers }, body: blob });
    return { status: response.status, text: await response.text() };
  } catch (err) {
    throw new TelestackError(NETWORK_ERROR, 0, `upload: ${(err as Error)?.message ?? err}`);
  }
}

function putWithXhr(Xhr: new () => XhrLike, signed: SignedUpload, blob: BlobLike, onProgress: (loaded: number, total: number) => void): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const xhr = new Xhr();
    xhr.open('PUT', signed.url);
    for (const [name, value] of Object.entries(signed.headers)) xhr.setRequestHeader(name, value);
    if (xhr.upload) xhr.upload.onprogress = (e) => onProgress(e.loaded, e.total);
    xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText });
    xhr.onerror = () => reject(new TelestackError(NETWORK_ERROR, 0, 'upload: network error'));
    xhr.send(blob);
  });
}

/** S3's error code from its XML answer (e.g. SignatureDoesNotMatch), for the message. */
function s3Code(text: string): string {
  return /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? 'no detail';
}
