/**
 * Files in the stack's S3 bucket, through the gateway's presigned URLs (bytes never pass through the
 * gateway): an upload is the presigned POST form of `POST /v1/storage/upload-url` sent as
 * multipart/form-data; a download URL is `POST /v1/storage/download-url`'s presigned GET.
 */
import type { TelestackClient } from './client.js';
import { NETWORK_ERROR, TelestackError } from './errors.js';

/** A Blob/File (browsers, Node >= 18) or anything FormData accepts as a file part. */
export interface BlobLike {
  readonly size: number;
  readonly type?: string;
}

export interface UploadOptions {
  /** the Content-Type the signed policy pins (default: the blob's type, else application/octet-stream) */
  contentType?: string;
  /** progress in bytes; with XMLHttpRequest (browsers, React Native) during the upload, otherwise at the end */
  onProgress?: (loaded: number, total: number) => void;
}

export interface UploadResult {
  key: string;
  contentType: string;
  size: number;
}

interface UploadForm {
  url: string;
  fields: Record<string, string>;
  key: string;
  content_type: string;
}

interface FormDataLike {
  append(name: string, value: unknown, filename?: string): void;
}

interface XhrLike {
  open(method: string, url: string): void;
  send(body: unknown): void;
  status: number;
  responseText: string;
  upload?: { onprogress: ((e: { loaded: number; total: number }) => void) | null };
  onload: (() => void) | null;
  onerror: (() => void) | null;
}

export async function uploadFile(client: TelestackClient, key: string, blob: BlobLike, options: UploadOptions = {}): Promise<UploadResult> {
  const contentType = options.contentType || blob.type || 'application/octet-stream';
  const reply = await client.http.request({
    method: 'POST',
    path: '/v1/storage/upload-url',
    body: { key, content_type: contentType, size: blob.size },
  });
  const form = reply.body as UploadForm;
  const FormDataCtor = (globalThis as { FormData?: new () => FormDataLike }).FormData;
  if (!FormDataCtor) throw new TelestackError('unsupported', 0, 'uploadFile needs FormData on this platform');
  const body = new FormDataCtor();
  for (const [name, value] of Object.entries(form.fields)) body.append(name, value);
  body.append('file', blob, key.split('/').pop());
  const XhrCtor = (globalThis as { XMLHttpRequest?: new () => XhrLike }).XMLHttpRequest;
  const { status, text } = options.onProgress && XhrCtor ? await postWithXhr(XhrCtor, form.url, body, options.onProgress) : await postWithFetch(client, form.url, body);
  if (status < 200 || status >= 300) {
    throw new TelestackError('upload_refused', status, `the storage server refused the upload: ${s3Code(text)}`);
  }
  options.onProgress?.(blob.size, blob.size);
  return { key: form.key, contentType: form.content_type, size: blob.size };
}

export async function getDownloadURL(client: TelestackClient, key: string): Promise<string> {
  const reply = await client.http.request({ method: 'POST', path: '/v1/storage/download-url', body: { key } });
  return (reply.body as { url: string }).url;
}

async function postWithFetch(client: TelestackClient, url: string, body: FormDataLike): Promise<{ status: number; text: string }> {
  try {
    const response = await client.http.fetchImpl(url, { method: 'POST', headers: {}, body });
    return { status: response.status, text: await response.text() };
  } catch (err) {
    throw new TelestackError(NETWORK_ERROR, 0, `upload: ${(err as Error)?.message ?? err}`);
  }
}

function postWithXhr(
  Xhr: new () => XhrLike,
  url: string,
  body: FormDataLike,
  onProgress: (loaded: number, total: number) => void,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const xhr = new Xhr();
    xhr.open('POST', url);
    if (xhr.upload) xhr.upload.onprogress = (e) => onProgress(e.loaded, e.total);
    xhr.onload = () => resolve({ status: xhr.status, text: xhr.responseText });
    xhr.onerror = () => reject(new TelestackError(NETWORK_ERROR, 0, 'upload: network error'));
    xhr.send(body);
  });
}

/** S3's error code from its XML answer (e.g. EntityTooLarge), for the message. */
function s3Code(text: string): string {
  return /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? 'no detail';
}
