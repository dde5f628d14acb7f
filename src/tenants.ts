/** The tenant of every batch made without a key (the local single-user mode) and of keys made without one. */
export const DEFAULT_TENANT = "default";

/** Tenant names: short, printable, safe in logs and URLs. */
export const TENANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
