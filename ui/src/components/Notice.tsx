/** The states a page can be in besides showing data: loading, server unreachable, an error, nothing yet. */
import type { ReactNode } from "react";
import type { ApiError } from "../api";

export function Notice({ kind, title, children }: { kind: "info" | "error" | "empty"; title: string; children?: ReactNode }) {
  return (
    <div className={`notice notice-${kind}`} role={kind === "error" ? "alert" : "status"}>
      <strong>{title}</strong>
      {children && <div>{children}</div>}
    </div>
  );
}

/** An error of a page's main request: unreachable servers get their own words, since nothing is wrong with the request. */
export function LoadError({ error }: { error: ApiError }) {
  if (error.unreachable) {
    return (
      <Notice kind="error" title="Server unreachable">
        The Tranche server does not answer. This page retries by itself.
      </Notice>
    );
  }
  return <Notice kind="error" title="Could not load">{error.message}</Notice>;
}
