import { DOMParser } from '@xmldom/xmldom';

/**
 * Strict XML parsing for what arrives from outside (IdP metadata, SAML responses): no DTD at all
 * (SAML messages and metadata never carry one; a DTD is how entity-expansion and external-entity
 * attacks get in), and any parser error or warning is a refusal rather than a guess.
 */
export class XmlRefused extends Error {}

export function parseStrictXml(xml: string): Document {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new XmlRefused('a DTD is not allowed');
  const problems: string[] = [];
  const onProblem = (message: string) => { problems.push(message); };
  const doc = new DOMParser({ errorHandler: { warning: onProblem, error: onProblem, fatalError: onProblem } }).parseFromString(xml, 'text/xml');
  if (problems.length || !doc?.documentElement) throw new XmlRefused(`not well-formed XML (${(problems[0] ?? 'no root element').split('\n')[0]})`);
  return doc;
}

/** The element children of `parent` with this namespace and local name. */
export function childrenNamed(parent: Element, namespace: string, localName: string): Element[] {
  const found: Element[] = [];
  for (let node = parent.firstChild; node; node = node.nextSibling) {
    if (node.nodeType === 1) {
      const element = node as Element;
      if (element.namespaceURI === namespace && element.localName === localName) found.push(element);
    }
  }
  return found;
}

export const NS = {
  metadata: 'urn:oasis:names:tc:SAML:2.0:metadata',
  protocol: 'urn:oasis:names:tc:SAML:2.0:protocol',
  assertion: 'urn:oasis:names:tc:SAML:2.0:assertion',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
} as const;
