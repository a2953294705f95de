// A file streamed from the page into a host pool: one HTTP PUT of the file itself to
// `corral serve`, with progress (XMLHttpRequest reports upload progress; fetch does not).
import type { ApiError, UploadedFile } from '../../../electron/core/api/contract';

export interface Upload {
  done: Promise<UploadedFile>;
  abort(): void;
}

/** What a refused upload carries: the host's ApiError, like a failed call. */
export class UploadError extends Error {
  constructor(readonly error: ApiError) {
    super(error.message);
  }
}

/** token null: the login's cookie goes with the request instead. */
export function uploadFile(token: string | null, pool: string, file: File, onProgress: (sent: number) => void): Upload {
  const xhr = new XMLHttpRequest();
  const done = new Promise<UploadedFile>((resolve, reject) => {
    xhr.open('PUT', `/api/pools/${encodeURIComponent(pool)}/files/${encodeURIComponent(file.name)}`);
    if (token) xhr.setRequestHeader('authorization', `Bearer ${token}`);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      let body: { result?: UploadedFile; error?: ApiError } = {};
      try {
        body = JSON.parse(xhr.responseText) as typeof body;
      } catch {
        // not JSON: said below
      }
      if (body.result) resolve(body.result);
      else reject(new UploadError(body.error ?? { code: 'failed', message: `the host answered ${xhr.status}` }));
    };
    xhr.onerror = () => reject(new UploadError({ code: 'failed', message: 'the upload was cut off (connection lost)' }));
    xhr.onabort = () => reject(new UploadError({ code: 'failed', message: 'upload cancelled' }));
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}
