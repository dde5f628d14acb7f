/** Asks for an API key when the server wants one (it answered 401), and who is signed in, with a way out. */
import { useEffect, useState, type FormEvent } from "react";
import { useLiveFeed } from "../hooks";
import { session, type SessionState } from "../session";

export function useSession(): SessionState {
  const [state, setState] = useState(session.state());
  useEffect(() => {
    const unsubscribe = session.subscribe(setState);
    setState(session.state());
    if (session.state().kind === "unknown") void session.refresh();
    return unsubscribe;
  }, []);
  return state;
}

export function SignIn({ message }: { message?: string }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const feed = useLiveFeed();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    const problem = await session.signIn(key);
    setBusy(false);
    setError(problem);
    if (!problem) feed.reconnect();
  };
  return (
    <form className="card sign-in" onSubmit={(e) => void submit(e)} aria-label="Sign in">
      <h1>Sign in</h1>
      <p className="muted">This Tranche asks for an API key. An admin makes one with <code>npm run keys -- create</code> or <code>POST /api/keys</code>.</p>
      {message && <p className="muted">{message}</p>}
      <label>
        API key
        <input type="password" name="api-key" autoComplete="off" value={key} onChange={(e) => setKey(e.target.value)} required placeholder="trk_…" />
      </label>
      {error && (
        <div className="notice notice-error" role="alert">
          {error}
        </div>
      )}
      <button type="submit" className="btn btn-primary" disabled={busy || !key.trim()}>
        Sign in
      </button>
    </form>
  );
}

/** The key in use, shown in the top bar, and the way to sign out (not shown in the local mode). */
export function WhoAmI({ state }: { state: SessionState }) {
  const feed = useLiveFeed();
  if (state.kind !== "signed-in" || state.who.authentication !== "keys") return null;
  const { name, role, tenant } = state.who.key;
  return (
    <span className="who" data-testid="who">
      <span title={`role ${role}, tenant ${tenant}`}>
        {name} · {role} · {tenant}
      </span>
      <button
        type="button"
        className="btn btn-small"
        onClick={() => {
          void session.signOut().then(() => feed.reconnect());
        }}
      >
        Sign out
      </button>
    </span>
  );
}
