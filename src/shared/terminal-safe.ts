/*
 * Characters that JSON leaves raw but that a terminal or a line reader
 * takes as something other than text: DEL and the C1 controls (U+009B is
 * CSI on many terminals, so "\u009b2J" clears the screen of an admin who
 * runs `tail -f` on the audit log), the Unicode line and paragraph
 * separators (line breaks to some readers), and the bidirectional and
 * invisible format characters (they reorder or hide the rest of a line:
 * a record would not read as what it holds). Audit records and watch
 * output carry strings users chose (argv, paths), so they escape these.
 */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g;

const u = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/**
 * A JSON text with those characters written as \uXXXX escapes. Lossless:
 * they can stand only inside JSON strings, where the escape means the same
 * character, so JSON.parse gives back the same value.
 */
export function terminalSafeJson(json: string): string {
  return json.replace(UNSAFE_IN_JSON, u);
}

/** The same characters in plain text, as \u{XXXX} (printable, not reversible). */
export function escapeFormatCharacters(text: string): string {
  return text.replace(UNSAFE_IN_JSON, (c) => `\\u{${c.charCodeAt(0).toString(16).padStart(4, '0')}}`);
}
