/**
 * How deeply an HTML text nests its elements, found in one linear pass. HTML parsers that keep open
 * elements in an array they `unshift` (htmlparser2) take quadratic time on deep nesting, and
 * renderers that recurse overflow their stack: this scan decides before either runs.
 */

/** Elements that never hold content. */
const VOID = new Set(["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"]);

/** Elements whose end tag may be left out: a run of them is a list of siblings, not a nesting. */
const OPTIONAL_END = new Set(["p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "thead", "tbody", "tfoot", "colgroup", "caption", "rt", "rp", "html", "head", "body"]);

/** Elements whose content is text up to their own end tag. */
const RAW_TEXT = new Set(["script", "style", "textarea", "title", "xmp", "noscript", "iframe", "noembed", "noframes", "plaintext"]);

/**
 * The greatest nesting depth of `html`'s elements (void elements and those with optional end tags
 * not counted), or `stopAt + 1` as soon as the depth passes `stopAt`.
 */
export function htmlDepth(html: string, stopAt: number): number {
  const open: string[] = [];
  let max = 0;
  let i = html.indexOf("<");
  while (i !== -1 && i < html.length - 1) {
    const next = html.charCodeAt(i + 1);
    if (next === 0x21 /* ! */) {
      const end = html.startsWith("<!--", i) ? html.indexOf("-->", i + 4) : html.indexOf(">", i + 2);
      if (end === -1) break;
      i = html.indexOf("<", end);
      continue;
    }
    const closing = next === 0x2f; /* / */
    const nameStart = closing ? i + 2 : i + 1;
    let nameEnd = nameStart;
    while (nameEnd < html.length && isNameChar(html.charCodeAt(nameEnd))) nameEnd++;
    if (nameEnd === nameStart) {
      i = html.indexOf("<", i + 1);
      continue;
    }
    const name = html.slice(nameStart, nameEnd).toLowerCase();
    const tagEnd = endOfTag(html, nameEnd);
    if (tagEnd === -1) break;
    if (closing) {
      // An end tag closes its element and any left open inside it; a stray one is ignored. The search is
      // short: the scan stops once the depth passes `stopAt`.
      const at = open.lastIndexOf(name);
      if (at !== -1) open.length = at;
    } else if (RAW_TEXT.has(name)) {
      const endTag = new RegExp(`</${name}`, "ig");
      endTag.lastIndex = tagEnd;
      const close = endTag.exec(html);
      if (!close) break;
      i = html.indexOf("<", close.index + 2);
      continue;
    } else if (!VOID.has(name) && !OPTIONAL_END.has(name) && html.charCodeAt(tagEnd - 1) !== 0x2f) {
      open.push(name);
      if (open.length > max) max = open.length;
      if (max > stopAt) return stopAt + 1;
    }
    i = html.indexOf("<", tagEnd + 1);
  }
  return max;
}

function isNameChar(code: number): boolean {
  return (code >= 0x61 && code <= 0x7a) || (code >= 0x41 && code <= 0x5a) || (code >= 0x30 && code <= 0x39) || code === 0x2d || code === 0x3a;
}

/** The offset of the `>` that ends a tag whose name ends at `from`, skipping quoted attribute values. */
function endOfTag(html: string, from: number): number {
  let quote = 0;
  for (let i = from; i < html.length; i++) {
    const code = html.charCodeAt(i);
    if (quote) {
      if (code === quote) quote = 0;
    } else if (code === 0x22 || code === 0x27) {
      quote = code;
    } else if (code === 0x3e) {
      return i;
    }
  }
  return -1;
}
