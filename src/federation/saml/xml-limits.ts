import { NS, XmlRefused, parseStrictXml } from './xml.ts';

/**
 * How big a SAML document may be in shape, not only in bytes. The ACS is public and everything
 * node-saml, xml-crypto and xml-encryption do happens before a signature is known to be good; the
 * `xpath` package they use is quadratic in the number of children of one element (12,000 empty
 * siblings, 48 KB, kept the event loop busy for 75 s in the security review), and c14n, cloning
 * and namespace handling grow with depth, attributes and namespace declarations. A response from
 * a real IdP is a few dozen elements (a few hundred with a long group list), so these bounds
 * refuse nothing real and keep one response's work in milliseconds (decision 0036).
 */
export interface XmlLimits {
  /** Element nodes in the whole document. */
  maxElements: number;
  /** Nodes of every kind (elements, text, comments, processing instructions, CDATA). */
  maxNodes: number;
  /** Nesting of elements (the root is depth 1). */
  maxDepth: number;
  /** Child nodes (of every kind) of one element, outside the attribute lists below. */
  maxChildren: number;
  /** Child nodes of one saml:AttributeStatement or saml:Attribute (long group lists live there). */
  maxAttributeListChildren: number;
  /** Attributes of one element, namespace declarations included. */
  maxAttributesPerElement: number;
  /** Attributes in the whole document, namespace declarations included. */
  maxAttributes: number;
  /** Namespace declarations (xmlns, xmlns:p) in the whole document. */
  maxNamespaceDeclarations: number;
}

export const SAML_XML_LIMITS: XmlLimits = {
  maxElements: 1_000,
  maxNodes: 3_000,
  maxDepth: 32,
  maxChildren: 128,
  maxAttributeListChildren: 1_024,
  maxAttributesPerElement: 32,
  maxAttributes: 2_000,
  maxNamespaceDeclarations: 128,
};

/**
 * A SAML document from outside: bounded in its text first (xmldom's own parsing grows faster than
 * linearly with siblings, nesting, attributes and namespace declarations: 12,000 siblings took
 * 250 ms to parse alone), then parsed strictly (xml.ts), then bounded in its tree.
 */
export function parseBoundedXml(xml: string, limits: XmlLimits = SAML_XML_LIMITS): Document {
  checkXmlText(xml, limits);
  const doc = parseStrictXml(xml);
  checkXmlLimits(doc, limits);
  return doc;
}

const count = (text: string, pattern: RegExp, atMost: number): boolean => {
  let n = 0;
  pattern.lastIndex = 0;
  while (pattern.exec(text)) if (++n > atMost) return false;
  return true;
};

/**
 * Upper bounds read from the text before any parser sees it, each a count of something every
 * node, attribute or declaration needs: a `<` per tag, comment or processing instruction; a `="`
 * (or `='`) per attribute; an ` xmlns` per namespace declaration. Text that happens to contain
 * these only makes the bound stricter, never looser.
 */
export function checkXmlText(xml: string, limits: XmlLimits = SAML_XML_LIMITS): void {
  // Start and end tag of every element, and a few comments or processing instructions.
  const tags = 2 * limits.maxElements + 256;
  if (!count(xml, /</g, tags)) throw new XmlRefused(`more than ${tags} tags, comments and processing instructions`);
  if (!count(xml, /=\s*["']/g, limits.maxAttributes)) throw new XmlRefused(`more than ${limits.maxAttributes} attributes`);
  if (!count(xml, /\sxmlns[\s:=]/g, limits.maxNamespaceDeclarations)) throw new XmlRefused(`more than ${limits.maxNamespaceDeclarations} namespace declarations`);
}

const isAttributeList = (element: Element) => element.namespaceURI === NS.assertion && (element.localName === 'AttributeStatement' || element.localName === 'Attribute');

/**
 * Walks the tree once, iteratively (a 26,000-level nesting must not overflow the stack), and
 * throws XmlRefused at the first bound exceeded; the walk stops there, so refusing costs at most
 * the bounds themselves.
 */
export function checkXmlLimits(doc: Document, limits: XmlLimits = SAML_XML_LIMITS): void {
  const root = doc.documentElement;
  if (!root) throw new XmlRefused('no root element');
  let elements = 0;
  let nodes = 0;
  let attributes = 0;
  let namespaces = 0;
  let depth = 1;
  let node: Node | null = root;
  while (node) {
    nodes += 1;
    if (nodes > limits.maxNodes) throw new XmlRefused(`more than ${limits.maxNodes} nodes`);
    if (node.nodeType === 1) {
      const element = node as Element;
      elements += 1;
      if (elements > limits.maxElements) throw new XmlRefused(`more than ${limits.maxElements} elements`);
      if (depth > limits.maxDepth) throw new XmlRefused(`nested deeper than ${limits.maxDepth}`);
      const count = element.attributes.length;
      if (count > limits.maxAttributesPerElement) throw new XmlRefused(`an element with more than ${limits.maxAttributesPerElement} attributes`);
      attributes += count;
      if (attributes > limits.maxAttributes) throw new XmlRefused(`more than ${limits.maxAttributes} attributes`);
      for (let i = 0; i < count; i += 1) {
        const name = element.attributes.item(i)!.name;
        if (name === 'xmlns' || name.startsWith('xmlns:')) namespaces += 1;
      }
      if (namespaces > limits.maxNamespaceDeclarations) throw new XmlRefused(`more than ${limits.maxNamespaceDeclarations} namespace declarations`);
      const maxChildren = isAttributeList(element) ? limits.maxAttributeListChildren : limits.maxChildren;
      let children = 0;
      for (let child = element.firstChild; child; child = child.nextSibling) {
        children += 1;
        if (children > maxChildren) throw new XmlRefused(`an element with more than ${maxChildren} children`);
      }
    }
    // Next in document order: first child, else the next sibling of the nearest ancestor that has one.
    if (node.firstChild) {
      node = node.firstChild;
      depth += 1;
      continue;
    }
    while (node && node !== root && !node.nextSibling) {
      node = node.parentNode;
      depth -= 1;
    }
    node = node && node !== root ? node.nextSibling : null;
  }
}
