// Decoding the API server's JSON without metadata.managedFields. The caches drop managedFields anyway
// (lean.ts); parsed first, each entry's fieldsV1 is a tree of small objects built to be thrown away:
// a third of a pod's JSON and half of a node's in a burst, and most of what a LIST page of a large
// cluster's pods holds for a moment. Cut from the text before JSON.parse, they are never built.
//
// The cut needs no knowledge of key order: from `"managedFields":[` it skips strings (a `]` inside a
// field name or value is not the end) and stops at the first `]` outside one. That is the array's end
// because nothing inside a managedFields entry is an array (fieldsV1 encodes sets as object keys).
// If that ever stops being true, the text left is not JSON and the whole text is parsed instead.

const KEY = '"managedFields":[';

/** The index of the `]` closing the managedFields array that opens at `from`, or -1. */
function endOfArray(text: string, from: number): number {
  let at = from;
  let close = text.indexOf(']', at);
  for (;;) {
    if (close < 0) return -1;
    const quote = text.indexOf('"', at);
    if (quote < 0 || close < quote) return close;
    // Skip the string opening at `quote`: its end is the next quote not escaped by an odd run of backslashes.
    let end = quote;
    for (;;) {
      end = text.indexOf('"', end + 1);
      if (end < 0) return -1;
      let slashes = 0;
      while (text.charCodeAt(end - 1 - slashes) === 92) slashes++;
      if (slashes % 2 === 0) break;
    }
    at = end + 1;
    if (close < at) close = text.indexOf(']', at);
  }
}

/** `text` with every `"managedFields":[…]` member removed (with the comma that joined it), or undefined if none. */
export function withoutManagedFields(text: string): string | undefined {
  let start = text.indexOf(KEY);
  if (start < 0) return undefined;
  const parts: string[] = [];
  let kept = 0;
  while (start >= 0) {
    // A member starts after `{` or `,` (the API server writes no whitespace); anything else, such as
    // a key ending in an escaped quote and managedFields (`"b\"managedFields":[`), is parsed whole.
    const before = text.charCodeAt(start - 1);
    if (before !== 123 /* { */ && before !== 44 /* , */) return undefined;
    const close = endOfArray(text, start + KEY.length);
    if (close < 0) return undefined;
    let from = start;
    let to = close + 1;
    if (text.charCodeAt(from - 1) === 44 /* , */) from--;
    else if (text.charCodeAt(to) === 44) to++;
    parts.push(text.slice(kept, from));
    kept = to;
    start = text.indexOf(KEY, kept);
  }
  parts.push(text.slice(kept));
  return parts.join('');
}

/**
 * JSON.parse of an API server answer (a watch event, a LIST page, an object), leaving out managedFields.
 * Anything the cut would get wrong is parsed whole.
 */
export function parseLean<T>(text: string): T {
  const cut = withoutManagedFields(text);
  if (cut !== undefined) {
    try {
      return JSON.parse(cut) as T;
    } catch {
      // Not JSON after the cut: parsed as it came (the JSON.parse below reports a text that is not JSON at all).
    }
  }
  return JSON.parse(text) as T;
}
