/**
 * Calls to the Switchboard HTTP API, relative to the page (`/v1/...`: same origin on `serve`
 * and behind `switchboard console`). Every call carries the signed-in token, is bounded by
 * `TIMEOUT_MS`, and fails with an `ApiError` holding the API's `{"error","message"}`. A 401
 * also tells `onUnauthorized`, which sends the page back to sign-in.
 */

/** Longest wait for one API answer. */
export const TIMEOUT_MS = 15_000;

export class ApiError extends Error {
  constructor(
    /** HTTP status; 0 when no answer came (network, timeout). */
    readonly status: number,
    /** The API's `error` code (`forbidden`, `not_found`, …), or `network` / `timeout`. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** The `ApiError` for a non-2xx answer: the API's own code and message when it sent them. */
export function errorFromAnswer(status: number, body: unknown): ApiError {
  const fields = typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
  const code = typeof fields.error === "string" ? fields.error : `http_${status}`;
  const message =
    typeof fields.message === "string" && fields.message !== ""
      ? fields.message
      : `the API answered ${status} without a message`;
  return new ApiError(status, code, message);
}

/** The `ApiError` for a call that got no answer. */
export function errorFromFailure(failure: unknown): ApiError {
  const name = failure instanceof Error ? failure.name : "";
  if (name === "TimeoutError" || name === "AbortError") {
    return new ApiError(0, "timeout", `no answer from the API within ${TIMEOUT_MS / 1000} s`);
  }
  const detail = failure instanceof Error ? failure.message : String(failure);
  return new ApiError(0, "network", `the API could not be reached: ${detail}`);
}

export interface ApiOptions {
  token: string;
  /** Called once per 401 answer, with the API's message. */
  onUnauthorized?: (message: string) => void;
  fetch?: typeof fetch;
}

export type Api = <T = unknown>(method: string, path: string, body?: unknown) => Promise<T>;

export function createApi(options: ApiOptions): Api {
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  return async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${options.token}` };
    const init: RequestInit = { method, headers, signal: AbortSignal.timeout(TIMEOUT_MS) };
    if (body !== undefined) {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response: Response;
    let parsed: unknown;
    try {
      response = await fetchImpl(path, init);
      const text = await response.text();
      parsed = text === "" ? undefined : safeParse(text);
    } catch (failure) {
      throw errorFromFailure(failure);
    }
    if (!response.ok) {
      const error = errorFromAnswer(response.status, parsed);
      if (response.status === 401) options.onUnauthorized?.(error.message);
      throw error;
    }
    return parsed as T;
  };
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 300) };
  }
}

/** `path` with the query parameters that are set (empty strings and undefined left out). */
export function withQuery(path: string, query: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text === "" ? path : `${path}?${text}`;
}

/** One path segment (a tenant or user id), encoded. */
export const seg = encodeURIComponent;
