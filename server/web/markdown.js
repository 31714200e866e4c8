// Markdown for the playground, rendered as DOM nodes: model output is only
// ever put into the page as text nodes (textContent / createTextNode); no
// HTML string is assigned anywhere.

export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// inline renders `code`, **bold**, *italic* / _italic_ and [text](http…)
// links into parent.
function inline(parent, text) {
  const re = /(`+)([\s\S]*?)\1|\*\*([^*]+)\*\*|(?<![\w*])\*([^*\s][^*]*)\*|(?<!\w)_([^_\s][^_]*)_(?!\w)|\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/g;
  let last = 0, m;
  while ((m = re.exec(text)) !== null) {
    if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
    if (m[1]) parent.append(el("code", "", m[2]));
    else if (m[3] !== undefined) inline(parent.appendChild(el("strong")), m[3]);
    else if (m[4] !== undefined) inline(parent.appendChild(el("em")), m[4]);
    else if (m[5] !== undefined) inline(parent.appendChild(el("em")), m[5]);
    else {
      const a = el("a", "", m[6]);
      a.href = m[7]; // only http(s) URLs match the pattern
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      parent.append(a);
    }
    last = re.lastIndex;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

// markdown renders text (fenced code, headings, lists, paragraphs) into a
// fragment. An unclosed fence (still streaming) is shown as code too.
export function markdown(text) {
  const frag = document.createDocumentFragment();
  const lines = text.split("\n");
  let para = [], list = null;
  const flush = () => {
    if (para.length) { const p = el("p"); inline(p, para.join("\n")); frag.append(p); para = []; }
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = line.match(/^\s*(```|~~~)\s*([\w+-]*)/);
    if (fence) {
      flush();
      const body = [];
      for (i++; i < lines.length && !lines[i].trim().startsWith(fence[1]); i++) body.push(lines[i]);
      const pre = el("pre"), code = el("code", "", body.join("\n"));
      if (fence[2]) code.dataset.lang = fence[2];
      pre.append(code);
      frag.append(pre);
      continue;
    }
    const h = line.match(/^(#{1,6})\s+(.*)$/);
    if (h) { flush(); const e = el("h" + Math.min(h[1].length, 3)); inline(e, h[2]); frag.append(e); continue; }
    const li = line.match(/^\s*([-*+]|\d+[.)])\s+(.*)$/);
    if (li) {
      if (para.length) { const keep = list; flush(); list = keep; }
      const ordered = /\d/.test(li[1]);
      if (!list || (list.tagName === "OL") !== ordered) { list = el(ordered ? "ol" : "ul"); frag.append(list); }
      const item = el("li"); inline(item, li[2]); list.append(item);
      continue;
    }
    if (line.trim() === "") { flush(); continue; }
    if (list) list = null;
    para.push(line);
  }
  flush();
  return frag;
}

