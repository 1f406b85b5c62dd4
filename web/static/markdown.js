// A small, safe Markdown renderer for answers: the subset a language model
// writes (paragraphs, headings, lists nested one level, block quotes, fenced
// code, inline code, bold and italic, links) and the answer's citations, [1]
// or [1, 3], linked to its numbered sources.
//
// It builds DOM nodes with createElement and text nodes, never markup: the
// answer's text can never become an element, an attribute or a script. Raw
// HTML in an answer shows as the text it is. A link's URL is resolved against
// the page and kept only when it is http: or https: (a relative path resolves
// to the page's own); any other, javascript: and data: included, leaves the
// link's source as text.
//
// It is meant to be run again on the whole answer as it grows (an answer is
// a few kilobytes): with streaming set, what the model has not finished yet
// renders as it will end, an open code fence as a code block and an open
// ** or ` to the end of the text, so the answer does not jump about. The
// blank lines between blocks are kept as whitespace text (which the page does
// not show), so that an answer in plain prose has exactly its source as its
// textContent.

const FENCE = /^( {0,3})(`{3,}|~{3,})[ \t]*([^\s`]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const ITEM = /^( *)([-*+]|\d{1,9}[.)])[ \t]+(.*)$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const CITATION = /^\[(\d{1,3}(?:[ \t]*,[ \t]*\d{1,3})*)\]/;
const PUNCT = /[!-/:-@[-`{-~]/;
const SPACE = /\s/;
const WORD = /[\p{L}\p{N}]/u;

/**
 * renderAnswer returns the DOM nodes of the Markdown text, in a fragment.
 *
 * - cite(n) gives the n-th source's {href, title}, or undefined when there
 *   is no such source (its citation then stays text);
 * - base is the URL links resolve against (the page's);
 * - streaming says the text is not finished: its last block renders as it
 *   will once closed;
 * - caret (streaming by default) puts an empty <span class="caret"> in the
 *   last block, where the text goes on (or, in an answer cut short, would).
 */
export function renderAnswer(text, { cite = () => undefined, base = document.baseURI, streaming = false, caret: withCaret = streaming } = {}) {
  const ctx = { cite, base, origin: new URL(base).origin, openEnd: false };
  const lines = text.split('\n');
  const frag = document.createDocumentFragment();
  let lastBlock = null;
  let i = 0;
  // sep adds the line end after line j, when there is one.
  const sep = (j) => {
    if (j < lines.length - 1) frag.append('\n');
  };
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === '') {
      if (line) frag.append(line);
      sep(i);
      i++;
      continue;
    }
    const [el, next] = block(lines, i, ctx, streaming);
    frag.append(el);
    lastBlock = el;
    sep(next - 1);
    i = next;
  }
  if (withCaret && lastBlock) tail(lastBlock).append(caret());
  return frag;
}

/** block renders the block that starts at line i; returns it and the line after it. */
function block(lines, i, ctx, streaming) {
  const last = (j) => streaming && j >= lines.length;
  const line = lines[i];
  let m;
  if ((m = FENCE.exec(line))) {
    const [, indent, fence, info] = m;
    const close = new RegExp(`^ {0,3}${fence[0] === '`' ? '`' : '~'}{${fence.length},}[ \\t]*$`);
    const body = [];
    let j = i + 1;
    while (j < lines.length && !close.test(lines[j])) {
      body.push(lines[j].replace(new RegExp(`^ {0,${indent.length}}`), ''));
      j++;
    }
    if (j >= lines.length && body.at(-1) === '') body.pop(); // an open fence's last line end
    const pre = document.createElement('pre');
    const code = document.createElement('code');
    if (/^[\w+#.-]{1,32}$/.test(info)) code.className = 'language-' + info;
    code.textContent = body.join('\n');
    pre.append(code);
    return [pre, Math.min(j + 1, lines.length)]; // an open fence runs to the end
  }
  if ((m = HEADING.exec(line))) {
    const h = document.createElement('h' + Math.min(m[1].length + 2, 6)); // under the page's h2
    h.append(...inline(m[2] || '', { ...ctx, openEnd: last(i + 1) }));
    return [h, i + 1];
  }
  if (ITEM.test(line)) return list(lines, i, ctx, streaming);
  if (QUOTE.test(line)) {
    let j = i;
    const body = [];
    while (j < lines.length && (m = QUOTE.exec(lines[j]))) {
      body.push(m[1]);
      j++;
    }
    const q = document.createElement('blockquote');
    const p = document.createElement('p');
    p.append(...inline(body.join('\n'), { ...ctx, openEnd: last(j) }));
    q.append(p);
    return [q, j];
  }
  let j = i + 1;
  while (j < lines.length && lines[j].trim() !== '' && !startsBlock(lines[j])) j++;
  const p = document.createElement('p');
  p.append(...inline(lines.slice(i, j).join('\n'), { ...ctx, openEnd: last(j) }));
  return [p, j];
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || ITEM.test(line) || QUOTE.test(line);
}

/**
 * list renders the list that starts at line i: its items, their
 * continuation lines, and one level of nested items (deeper ones join it).
 * A blank line followed by another item keeps the list going.
 */
function list(lines, i, ctx, streaming) {
  const first = ITEM.exec(lines[i]);
  const top = first[1].length;
  const root = newList(first[2]);
  let item = null; // {li, lines, sub, subItem}
  const items = [];
  let j = i;
  while (j < lines.length) {
    const line = lines[j];
    if (line.trim() === '') {
      const k = nextNonBlank(lines, j);
      if (k < lines.length && (ITEM.test(lines[k]) || indentOf(lines[k]) > top)) {
        j = k;
        continue;
      }
      break;
    }
    const m = ITEM.exec(line);
    if (m && m[1].length <= top + 1) {
      if (ordered(m[2]) !== (root.tagName === 'OL')) break; // another kind of list begins
      item = { li: document.createElement('li'), lines: [m[3]], sub: null, subItems: [] };
      items.push(item);
      root.append(item.li);
    } else if (m) {
      if (!item.sub) item.sub = newList(m[2]);
      item.subItems.push({ li: document.createElement('li'), lines: [m[3]] });
    } else if (FENCE.test(line) || HEADING.test(line) || (indentOf(line) <= top && startsBlock(line))) {
      break;
    } else {
      const target = item.subItems.length ? item.subItems[item.subItems.length - 1] : item;
      target.lines.push(line.trim());
    }
    j++;
  }
  const end = j;
  const fill = (it, isLast) => it.li.append(...inline(it.lines.join('\n'), { ...ctx, openEnd: isLast }));
  const open = streaming && end >= lines.length;
  items.forEach((it, n) => {
    const lastItem = n === items.length - 1;
    fill(it, open && lastItem && !it.sub);
    if (it.sub) {
      it.subItems.forEach((s, k) => {
        fill(s, open && lastItem && k === it.subItems.length - 1);
        it.sub.append(s.li);
      });
      it.li.append(it.sub);
    }
  });
  return [root, end];
}

function newList(marker) {
  const l = document.createElement(ordered(marker) ? 'ol' : 'ul');
  if (ordered(marker)) {
    const start = parseInt(marker, 10);
    if (start !== 1) l.start = start;
  }
  return l;
}

const ordered = (marker) => /\d/.test(marker);
const indentOf = (line) => line.length - line.trimStart().length;

function nextNonBlank(lines, j) {
  while (j < lines.length && lines[j].trim() === '') j++;
  return j;
}

/** tail is the element where the text of block el goes on. */
function tail(el) {
  for (;;) {
    const last = el.lastElementChild;
    if (el.tagName === 'PRE' || el.tagName === 'BLOCKQUOTE') el = last;
    else if ((el.tagName === 'UL' || el.tagName === 'OL') && last) el = last;
    else if (el.tagName === 'LI' && last && (last.tagName === 'UL' || last.tagName === 'OL')) el = last;
    else return el;
  }
}

function caret() {
  const s = document.createElement('span');
  s.className = 'caret';
  s.setAttribute('aria-hidden', 'true');
  return s;
}

/**
 * inline renders a block's text: code spans, links, citations, bold and
 * italic, backslash escapes; everything else is text. With ctx.openEnd an
 * unclosed code span or emphasis runs to the end of the text.
 */
function inline(s, ctx, links = true) {
  const out = [];
  let buf = '';
  const flush = () => {
    if (buf) out.push(document.createTextNode(buf));
    buf = '';
  };
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length && PUNCT.test(s[i + 1])) {
      buf += s[i + 1];
      i += 2;
      continue;
    }
    if (c === '`') {
      const n = runOf(s, i, c);
      let close = findRun(s, i + n, c, n);
      if (close < 0 && ctx.openEnd) close = s.length;
      if (close >= 0) {
        flush();
        out.push(codeSpan(s.slice(i + n, close)));
        i = Math.min(close + n, s.length);
      } else {
        buf += s.slice(i, i + n);
        i += n;
      }
      continue;
    }
    if (c === '[' && links) { // inside a link's text, no links and no citations
      const link = matchLink(s, i);
      if (link) {
        const href = safeURL(link.url, ctx.base);
        if (href) {
          flush();
          const a = document.createElement('a');
          a.href = href.href;
          if (href.origin !== ctx.origin) a.rel = 'noopener noreferrer';
          a.append(...inline(link.text, { ...ctx, openEnd: false }, false));
          out.push(a);
        } else {
          buf += s.slice(i, link.end); // a URL this page does not follow: its source, as text
        }
        i = link.end;
        continue;
      }
      const m = CITATION.exec(s.slice(i, i + 64));
      if (m) {
        flush();
        out.push(...citation(m[1], ctx.cite));
        i += m[0].length;
        continue;
      }
    }
    if (c === '*' || c === '_') {
      const run = runOf(s, i, c);
      const n = run >= 2 ? 2 : 1;
      if (canOpen(s, i, run, c)) {
        let close = findCloser(s, i + n, c, n);
        const open = close < 0 && ctx.openEnd;
        if (open) close = s.length;
        if (close > i + n) {
          flush();
          const em = document.createElement(n === 2 ? 'strong' : 'em');
          em.append(...inline(s.slice(i + n, close), { ...ctx, openEnd: open }, links));
          out.push(em);
          i = Math.min(close + n, s.length);
          continue;
        }
      }
      buf += s.slice(i, i + run);
      i += run;
      continue;
    }
    buf += c;
    i++;
  }
  flush();
  return out;
}

function codeSpan(text) {
  let t = text.replace(/\n/g, ' ');
  if (t.length > 2 && t[0] === ' ' && t[t.length - 1] === ' ' && t.trim()) t = t.slice(1, -1);
  const code = document.createElement('code');
  code.textContent = t;
  return code;
}

/** citation renders "1, 3" of [1, 3]: each number of a source a link to it, the others text. */
function citation(numbers, cite) {
  const out = [document.createTextNode('[')];
  for (const part of numbers.split(/([ \t]*,[ \t]*)/)) {
    const source = /^\d+$/.test(part) ? cite(Number(part)) : undefined;
    if (source) {
      const a = document.createElement('a');
      a.className = 'cite';
      a.href = source.href;
      if (source.title) {
        a.title = source.title;
        a.setAttribute('aria-label', `source ${part}: ${source.title}`);
      }
      a.textContent = part;
      out.push(a);
    } else {
      out.push(document.createTextNode(part));
    }
  }
  out.push(document.createTextNode(']'));
  return out;
}

/**
 * safeURL resolves url against base and returns it if it is http: or
 * https:, else null. Resolving first is what makes it safe: the browser
 * drops tabs and newlines from URLs ("java\tscript:"), and so does URL.
 */
export function safeURL(url, base) {
  try {
    const u = new URL(url, base);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u : null;
  } catch {
    return null;
  }
}

/** matchLink matches [text](url "title") at i: returns {text, url, end} or null. */
function matchLink(s, i) {
  let depth = 0;
  let j = i;
  for (; j < s.length; j++) {
    if (s[j] === '\\') j++;
    else if (s[j] === '[') depth++;
    else if (s[j] === ']' && --depth === 0) break;
  }
  if (j >= s.length || s[j + 1] !== '(') return null;
  let k = j + 2;
  depth = 1;
  for (; k < s.length; k++) {
    if (s[k] === '\\') k++;
    else if (s[k] === '(') depth++;
    else if (s[k] === ')' && --depth === 0) break;
    else if (s[k] === '\n') return null;
  }
  if (k >= s.length) return null;
  // A destination, <in brackets> or without spaces, then perhaps a title.
  const m = /^\s*(?:<([^<>\n]*)>|([^\s<>]*))(?:\s+(?:"[^"]*"|'[^']*'))?\s*$/.exec(s.slice(j + 2, k));
  if (!m) return null;
  return { text: s.slice(i + 1, j), url: m[1] ?? m[2], end: k + 1 };
}

function runOf(s, i, c) {
  let j = i;
  while (s[j] === c) j++;
  return j - i;
}

/** findRun finds a run of exactly n characters c from i, or -1. */
function findRun(s, i, c, n) {
  while (i < s.length) {
    const j = s.indexOf(c, i);
    if (j < 0) return -1;
    const r = runOf(s, j, c);
    if (r === n) return j;
    i = j + r;
  }
  return -1;
}

function canOpen(s, i, run, c) {
  const next = s[i + run];
  if (next === undefined || SPACE.test(next)) return false;
  return c === '*' || i === 0 || !WORD.test(s[i - 1]);
}

function canClose(s, j, run, c) {
  const prev = s[j - 1];
  if (prev === undefined || SPACE.test(prev)) return false;
  const next = s[j + run];
  return c === '*' || next === undefined || !WORD.test(next);
}

/**
 * findCloser finds where emphasis of n characters c that opens before i
 * closes (the last n of a closing run), skipping code spans; or -1.
 */
function findCloser(s, i, c, n) {
  let j = i;
  while (j < s.length) {
    const ch = s[j];
    if (ch === '\\') {
      j += 2;
    } else if (ch === '`') {
      const r = runOf(s, j, '`');
      const end = findRun(s, j + r, '`', r);
      j = end < 0 ? j + r : end + r;
    } else if (ch === c) {
      const r = runOf(s, j, c);
      if (r >= n && j > i && canClose(s, j, r, c)) return j + r - n;
      j += r;
    } else {
      j++;
    }
  }
  return -1;
}
