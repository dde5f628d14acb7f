/** The app shell: navigation, the live-updates note, who is signed in, and the page for the current path (or the sign-in form). */
import { BatchDetail } from "./components/BatchDetail";
import { BatchTable } from "./components/BatchTable";
import { CreateBatch } from "./components/CreateBatch";
import { Notice } from "./components/Notice";
import { QueueView } from "./components/QueueView";
import { SignIn, useSession, WhoAmI } from "./components/SignIn";
import { useLiveStatus } from "./hooks";
import { Link, useRoute, type Route } from "./router";

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case "batches":
      return <BatchTable />;
    case "new":
      return <CreateBatch />;
    case "batch":
      return <BatchDetail id={route.id} />;
    case "queue":
      return <QueueView />;
    case "missing":
      return (
        <Notice kind="empty" title="No such page">
          Nothing lives at {route.path}. <Link to="/">Back to the batches</Link>.
        </Notice>
      );
  }
}

function LiveNote() {
  const status = useLiveStatus();
  if (status === "live") return <span className="live live-on" title="Changes appear as they happen">live</span>;
  if (status === "connecting") return <span className="live">connecting…</span>;
  return (
    <span className="live live-off" data-testid="live-reconnecting" title="Refreshing every 2 seconds until the live stream is back">
      live updates reconnecting
    </span>
  );
}

export function App() {
  const route = useRoute();
  const signedIn = useSession();
  const here = (page: Route["page"]) => (route.page === page ? "nav-link active" : "nav-link");
  return (
    <>
      <header className="topbar">
        <Link to="/" className="brand">
          Tranche
        </Link>
        <nav>
          <Link to="/" className={here("batches")}>
            Batches
          </Link>
          <Link to="/new" className={here("new")}>
            New batch
          </Link>
          <Link to="/queue" className={here("queue")}>
            Queue
          </Link>
          <a href="/machine" className="nav-link">
            Machine
          </a>
        </nav>
        <LiveNote />
        <WhoAmI state={signedIn} />
      </header>
      <main className="page">{signedIn.kind === "signed-out" ? <SignIn message={signedIn.message} /> : <Page route={route} />}</main>
    </>
  );
}
