// original_filename extraction. Providers put the real name (often with
// spaces and accents) in Content-Disposition; the URL path is a fallback.

/** Percent-decode to bytes, then to text in the declared charset. */
function decodeExtValue(charset, value) {
  const bytes = [];
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === "%" && /^[0-9A-Fa-f]{2}$/.test(value.slice(i + 1, i + 3))) {
      bytes.push(parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...new TextEncoder().encode(c));
    }
  }
  const u8 = new Uint8Array(bytes);
  if (/^(iso-8859-1|latin1)$/i.test(charset)) {
    // Latin-1 maps each byte to the same code point; no decoder needed.
    return String.fromCharCode(...u8);
  }
  return new TextDecoder("utf-8", { fatal: true }).decode(u8);
}

/** Keep only a plain name: no directories, no control characters. */
function cleanName(name) {
  if (typeof name !== "string") return null;
  const base = name.split(/[\\/]/).pop().replace(/[\u0000-\u001f\u007f]/g, "").trim();
  return base && base !== "." && base !== ".." ? base : null;
}

/** RFC 6266 / RFC 5987: filename* first, then filename, else null. */
export function filenameFromContentDisposition(header) {
  if (!header) return null;
  const star = /(?:^|;)\s*filename\*\s*=\s*("?)([^";]+)\1/i.exec(header);
  if (star) {
    const m = /^([^']*)'[^']*'(.*)$/.exec(star[2].trim());
    if (m) {
      try {
        const name = cleanName(decodeExtValue(m[1] || "utf-8", m[2]));
        if (name) return name;
      } catch {
        // Malformed encoding: fall through to plain filename=.
      }
    }
  }
  const quoted = /(?:^|;)\s*filename\s*=\s*"((?:[^"\\]|\\.)*)"/i.exec(header);
  if (quoted) return cleanName(quoted[1].replace(/\\(.)/g, "$1"));
  const token = /(?:^|;)\s*filename\s*=\s*([^;\s]+)/i.exec(header);
  if (token) return cleanName(token[1]);
  return null;
}

/** Last URL path segment, percent-decoded, only if it looks like a file (has a dot). */
export function filenameFromUrl(urlString) {
  let url;
  try {
    url = new URL(urlString);
  } catch {
    return null;
  }
  const last = url.pathname.split("/").pop() || "";
  let decoded;
  try {
    decoded = decodeURIComponent(last);
  } catch {
    decoded = last;
  }
  return decoded.includes(".") ? cleanName(decoded) : null;
}

export function originalFilename(contentDisposition, sourceUrl) {
  return filenameFromContentDisposition(contentDisposition) ?? filenameFromUrl(sourceUrl);
}
