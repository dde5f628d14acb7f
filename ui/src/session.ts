/**
 * Who the browser is signed in as. With keys on, the API answers 401 until the user gives a
 * key; the key is kept in sessionStorage (gone when the browser session ends), sent as
 * `Authorization: Bearer` on every call, and handed once to `POST /api/session`, which sets
 * an HttpOnly cookie so that the live stream, the dashboard and the visualizer (which cannot
 * send headers) work too. Signing out forgets both.
 */

export interface SignedIn {
  authentication: "keys" | "off";
  key: { id: string; name: string; role: string; tenant: string };
}

export type SessionState = { kind: "unknown" } | { kind: "signed-out"; message?: string } | { kind: "signed-in"; who: SignedIn };

const STORAGE = "tranche.apiKey";
let state: SessionState = { kind: "unknown" };
const listeners = new Set<(s: SessionState) => void>();

function set(next: SessionState) {
  state = next;
  for (const l of listeners) l(next);
}

export const session = {
  state: () => state,
  subscribe(listener: (s: SessionState) => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  /** The key to send, if the user gave one in this browser session. */
  key(): string | null {
    try {
      return sessionStorage.getItem(STORAGE);
    } catch {
      return null;
    }
  },
  /** The API answered 401: the key is missing, unknown or revoked. */
  required(message?: string) {
    if (state.kind !== "signed-out") set({ kind: "signed-out", message });
  },
  /** Asks the server who we are (with the stored key, or the cookie). */
  async refresh(): Promise<void> {
    const key = session.key();
    const res = await fetch("/api/session", { headers: key ? { authorization: `Bearer ${key}` } : {} }).catch(() => null);
    if (!res) return;
    if (res.status === 401) return session.required();
    if (res.ok) set({ kind: "signed-in", who: (await res.json()) as SignedIn });
  },
  /** Tries a key; on success keeps it and sets the session cookie. Answers the error to show, or null. */
  async signIn(key: string): Promise<string | null> {
    const res = await fetch("/api/session", { method: "POST", headers: { authorization: `Bearer ${key.trim()}` } }).catch(() => null);
    if (!res) return "The Tranche server cannot be reached";
    if (res.status === 401) return "That key is not valid (unknown or revoked)";
    if (!res.ok) return `The server answered ${res.status}`;
    sessionStorage.setItem(STORAGE, key.trim());
    set({ kind: "signed-in", who: (await res.json()) as SignedIn });
    return null;
  },
  async signOut(): Promise<void> {
    const key = session.key();
    await fetch("/api/session", { method: "DELETE", headers: key ? { authorization: `Bearer ${key}` } : {} }).catch(() => null);
    sessionStorage.removeItem(STORAGE);
    set({ kind: "signed-out", message: "Signed out." });
  },
};
