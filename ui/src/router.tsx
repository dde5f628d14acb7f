/** History routing for the app's four pages; the server answers every such path with index.html. */
import { useEffect, useState, type MouseEvent, type ReactNode } from "react";

export type Route =
  | { page: "batches" }
  | { page: "new" }
  | { page: "batch"; id: string }
  | { page: "queue" }
  | { page: "missing"; path: string };

export function parseRoute(pathname: string): Route {
  const path = pathname.replace(/\/+$/, "") || "/";
  if (path === "/") return { page: "batches" };
  if (path === "/new") return { page: "new" };
  if (path === "/queue") return { page: "queue" };
  const batch = /^\/batches\/([^/]+)$/.exec(path);
  if (batch?.[1]) return { page: "batch", id: decodeURIComponent(batch[1]) };
  return { page: "missing", path };
}

export function navigate(to: string): void {
  history.pushState(null, "", to);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.pathname));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.pathname));
    window.addEventListener("popstate", update);
    return () => window.removeEventListener("popstate", update);
  }, []);
  return route;
}

/** A plain link that changes page without reloading; modified clicks (new tab) behave as usual. */
export function Link({ to, className, children }: { to: string; className?: string; children: ReactNode }) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return (
    <a href={to} className={className} onClick={onClick}>
      {children}
    </a>
  );
}
