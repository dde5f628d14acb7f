/** Display helpers shared by the pages. */

export function formatTime(iso: string): string {
  const d = new Date(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}

/** JSON on one line, cut to `max` characters for table cells. */
export function compactJson(value: unknown, max = 160): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  if (text === undefined) return "";
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Dollars: cents for amounts from a dollar up, four decimals below (LLM calls cost fractions of a cent). */
export function usd(value: number | null | undefined): string {
  if (value === null || value === undefined) return "unknown";
  return `$${value.toFixed(value >= 1 ? 2 : 4)}`;
}

export function tokens(n: number): string {
  return n.toLocaleString("en-US");
}
