// A small, strict XML reader for OVF descriptors: elements, attributes, text. It has no DTD
// support at all: a DOCTYPE or ENTITY declaration is refused, so no entity can expand (no
// billion laughs) and nothing outside the document is ever fetched. Names lose their prefix.
export interface XmlNode {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
  text: string;
}

export class XmlError extends Error {}

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function unescape(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);|&/g, (m, ref: string | undefined) => {
    if (!ref) throw new XmlError('a bare "&" in text');
    if (ref.startsWith('#x')) return String.fromCodePoint(parseInt(ref.slice(2), 16));
    if (ref.startsWith('#')) return String.fromCodePoint(parseInt(ref.slice(1), 10));
    const v = PREDEFINED[ref];
    if (v === undefined) throw new XmlError(`the entity "&${ref};" is not allowed (no DTDs)`);
    return v;
  });
}

const local = (name: string) => name.slice(name.indexOf(':') + 1);

export function parseXml(src: string, maxNodes = 100_000): XmlNode {
  const root: XmlNode = { name: '#document', attrs: {}, children: [], text: '' };
  const stack: XmlNode[] = [root];
  let i = 0;
  let nodes = 0;
  while (i < src.length) {
    const lt = src.indexOf('<', i);
    const text = src.slice(i, lt < 0 ? src.length : lt);
    if (text.trim()) stack[stack.length - 1]!.text += unescape(text);
    if (lt < 0) break;
    if (src.startsWith('<!--', lt)) {
      const end = src.indexOf('-->', lt + 4);
      if (end < 0) throw new XmlError('an unclosed comment');
      i = end + 3;
    } else if (src.startsWith('<?', lt)) {
      const end = src.indexOf('?>', lt + 2);
      if (end < 0) throw new XmlError('an unclosed processing instruction');
      i = end + 2;
    } else if (src.startsWith('<![CDATA[', lt)) {
      const end = src.indexOf(']]>', lt + 9);
      if (end < 0) throw new XmlError('an unclosed CDATA section');
      stack[stack.length - 1]!.text += src.slice(lt + 9, end);
      i = end + 3;
    } else if (src.startsWith('<!', lt)) {
      throw new XmlError('DOCTYPE and ENTITY declarations are not allowed');
    } else if (src.startsWith('</', lt)) {
      const end = src.indexOf('>', lt);
      const name = local(src.slice(lt + 2, end).trim());
      const open = stack.pop();
      if (!open || open === root || open.name !== name) throw new XmlError(`an unexpected closing tag </${name}>`);
      i = end + 1;
    } else {
      const m = /^<([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/.exec(src.slice(lt, lt + 65536));
      if (!m) throw new XmlError(`a malformed tag at offset ${lt}`);
      if (++nodes > maxNodes) throw new XmlError('too many elements');
      const node: XmlNode = { name: local(m[1]!), attrs: {}, children: [], text: '' };
      for (const a of m[2]!.matchAll(/([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g))
        node.attrs[local(a[1]!)] = unescape(a[2] ?? a[3] ?? '');
      stack[stack.length - 1]!.children.push(node);
      if (!m[3]) stack.push(node);
      i = lt + m[0].length;
    }
  }
  if (stack.length !== 1) throw new XmlError(`<${stack[stack.length - 1]!.name}> is never closed`);
  const top = root.children;
  if (top.length !== 1) throw new XmlError('the document must have one root element');
  return top[0]!;
}

/** Descendants named `name`, depth first. */
export function findAll(n: XmlNode, name: string): XmlNode[] {
  const out: XmlNode[] = [];
  for (const c of n.children) {
    if (c.name === name) out.push(c);
    out.push(...findAll(c, name));
  }
  return out;
}

export function child(n: XmlNode, name: string): XmlNode | undefined {
  return n.children.find((c) => c.name === name);
}
