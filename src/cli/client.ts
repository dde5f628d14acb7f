/**
 * The CLI's HTTP client for a Tranche server: `TRANCHE_URL` (default http://127.0.0.1:3000)
 * and `TRANCHE_API_KEY`, sent as `Authorization: Bearer`. A refusal becomes an `ApiError`
 * carrying the server's own message and code, never a stack trace.
 */
import type { z } from "zod";
import type { batchSchema } from "../server/api-responses";

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface ClientOptions {
  url: string;
  apiKey?: string;
}

export function clientOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): ClientOptions {
  return { url: (env.TRANCHE_URL ?? "http://127.0.0.1:3000").replace(/\/+$/, ""), ...(env.TRANCHE_API_KEY && { apiKey: env.TRANCHE_API_KEY }) };
}

export function createClient(options: ClientOptions) {
  const headers = (extra: Record<string, string> = {}): Record<string, string> => ({
    ...(options.apiKey && { authorization: `Bearer ${options.apiKey}` }),
    ...extra,
  });

  async function send(method: string, path: string, init: { json?: unknown; form?: FormData; accept?: string } = {}): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${options.url}${path}`, {
        method,
        headers: headers({
          ...(init.json !== undefined && { "content-type": "application/json" }),
          ...(init.accept && { accept: init.accept }),
        }),
        ...(init.json !== undefined && { body: JSON.stringify(init.json) }),
        ...(init.form && { body: init.form }),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(`cannot reach Tranche at ${options.url}: ${cause?.code ?? cause?.message ?? String(err)}`, 0, "unreachable");
    }
    if (!res.ok) {
      const text = await res.text();
      let body: { error?: string; code?: string } = {};
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        // Not one of our JSON errors (a proxy, another server): show the start of what came.
      }
      throw new ApiError(body.error ?? `HTTP ${res.status}: ${text.slice(0, 200)}`, res.status, body.code ?? `http_${res.status}`);
    }
    return res;
  }

  const json = async <T>(method: string, path: string, init?: Parameters<typeof send>[2]): Promise<T> => (await send(method, path, init)).json() as Promise<T>;

  return {
    url: options.url,
    headers,
    send,
    get: <T>(path: string) => json<T>("GET", path),
    post: <T>(path: string, body?: unknown) => json<T>("POST", path, { json: body ?? {} }),
    postForm: <T>(path: string, form: FormData) => json<T>("POST", path, { form }),
    delete: <T>(path: string) => json<T>("DELETE", path),
  };
}

export type Client = ReturnType<typeof createClient>;

/** The batch as the API shows it: the same schema the OpenAPI document is made of. */
export type BatchView = z.infer<typeof batchSchema>;
