/**
 * The batch list. A live message about a batch refetches that batch alone; a batch the list
 * does not know, a poll tick or a reconnection refetches the list, and so does a batch
 * entering or leaving the queue, since that moves the queue positions of the others.
 * Messages about a batch whose refetch is in flight are folded into one more refetch.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { api, asApiError, type ApiError, type Batch } from "../api";
import { useLive } from "../hooks";
import { Link } from "../router";
import { BatchRow } from "./BatchRow";
import { LoadError, Notice } from "./Notice";

/** `ANALYZING.queued`: the part of a batch's state that decides its queue membership. */
const stateOf = (b: { status: string; substate: string | null }) => (b.substate ? `${b.status}.${b.substate}` : b.status);

export function BatchTable() {
  const [batches, setBatches] = useState<Batch[] | undefined>(undefined);
  const [error, setError] = useState<ApiError | null>(null);
  const known = useRef(new Map<string, string>());
  const inFlight = useRef(new Set<string>());
  const again = useRef(new Set<string>());

  const reloadAll = useCallback(async () => {
    try {
      const { batches: list } = await api.listBatches();
      known.current = new Map(list.map((b) => [b.id, stateOf(b)]));
      setBatches(list);
      setError(null);
    } catch (err) {
      setError(asApiError(err));
    }
  }, []);

  const reloadOne = useCallback(async (id: string) => {
    if (inFlight.current.has(id)) {
      again.current.add(id);
      return;
    }
    inFlight.current.add(id);
    do {
      again.current.delete(id);
      try {
        const fresh = await api.getBatch(id);
        known.current.set(id, stateOf(fresh));
        setBatches((list) => list?.map((b) => (b.id === id && b.version <= fresh.version ? fresh : b)));
      } catch (err) {
        const e = asApiError(err);
        if (e.status === 404) setBatches((list) => list?.filter((b) => b.id !== id));
        else setError(e);
      }
    } while (again.current.has(id));
    inFlight.current.delete(id);
  }, []);

  useEffect(() => {
    void reloadAll();
  }, [reloadAll]);

  useLive((m) => {
    const before = m ? known.current.get(m.batch_id) : undefined;
    if (!m || before === undefined) void reloadAll();
    else if (m.deleted) setBatches((list) => list?.filter((b) => b.id !== m.batch_id));
    else if (before !== stateOf(m) && (before.startsWith("ANALYZING") || m.status === "ANALYZING")) void reloadAll();
    else void reloadOne(m.batch_id);
  });

  return (
    <section>
      <div className="page-head">
        <h1>Batches</h1>
        <Link to="/new" className="btn btn-primary">
          New batch
        </Link>
      </div>
      {error && <LoadError error={error} />}
      {batches === undefined && !error && <Notice kind="info" title="Loading batches…" />}
      {batches?.length === 0 && (
        <Notice kind="empty" title="No batches yet">
          <Link to="/new">Create the first batch</Link> by uploading a few documents.
        </Notice>
      )}
      {batches && batches.length > 0 && (
        <table className="table batches">
          <thead>
            <tr>
              <th>Name</th>
              <th>State</th>
              <th className="num">Queue</th>
              <th>Progress</th>
              <th>Updated</th>
              <th>Last error</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {batches.map((b) => (
              <BatchRow key={b.id} batch={b} onRefresh={(id) => void reloadOne(id)} />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
