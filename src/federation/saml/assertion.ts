/**
 * What the login needs from a signed assertion, read from the tree node-saml parsed it into
 * (xml2js: children as arrays, attributes under `$`, text under `_`, prefixes stripped). Only
 * the assertion node-saml verified reaches here, so nothing in it was injected around a signature.
 * Times are milliseconds since the epoch.
 */
export interface AssertionFacts {
  id: string;
  issuer: string;
  issueInstant: number;
  nameId: string;
  nameIdFormat: string | undefined;
  confirmations: { method: string | undefined; recipient: string | undefined; inResponseTo: string | undefined; notBefore: number | undefined; notOnOrAfter: number | undefined }[];
  notBefore: number | undefined;
  notOnOrAfter: number | undefined;
  /** One list of audiences per AudienceRestriction (each must name us, Core §2.5.1.4). */
  audiences: string[][];
  authnInstant: number | undefined;
  sessionIndex: string | undefined;
  attributes: Map<string, string[]>;
}

type Node = Record<string, unknown>;

const nodes = (value: unknown): Node[] => (Array.isArray(value) ? value.filter((v): v is Node => typeof v === 'object' && v !== null) : []);
const attr = (node: Node | undefined, name: string): string | undefined => {
  const attrs = node?.$ as Record<string, unknown> | undefined;
  const value = attrs?.[name];
  return typeof value === 'string' ? value : undefined;
};
const text = (node: Node | undefined): string | undefined => (typeof node?._ === 'string' ? node._ : undefined);

/** xs:dateTime in UTC as SAML requires (Core §1.3.3); anything else is refused, not guessed. */
function instant(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(value)) throw new Error(`${what} is not a UTC xs:dateTime`);
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new Error(`${what} is not a date`);
  return ms;
}

export function assertionFacts(parsed: Record<string, unknown>): AssertionFacts {
  const assertion = parsed.Assertion as Node | undefined;
  if (!assertion || typeof assertion !== 'object') throw new Error('no Assertion');
  const id = attr(assertion, 'ID');
  if (!id) throw new Error('assertion without ID');
  if (attr(assertion, 'Version') !== '2.0') throw new Error('assertion is not SAML 2.0');
  const issueInstant = instant(attr(assertion, 'IssueInstant'), 'IssueInstant');
  if (issueInstant === undefined) throw new Error('assertion without IssueInstant');
  const issuers = nodes(assertion.Issuer);
  if (issuers.length !== 1) throw new Error('assertion without one Issuer');
  const issuer = text(issuers[0])?.trim() ?? '';

  const subjects = nodes(assertion.Subject);
  if (subjects.length !== 1) throw new Error('assertion without one Subject');
  const nameIds = nodes(subjects[0]!.NameID);
  if (nameIds.length !== 1) throw new Error('Subject without one NameID (an EncryptedID is not supported)');
  const nameId = text(nameIds[0])?.trim() ?? '';
  if (!nameId) throw new Error('empty NameID');
  const confirmations = nodes(subjects[0]!.SubjectConfirmation).flatMap((confirmation) => {
    const data = nodes(confirmation.SubjectConfirmationData);
    const method = attr(confirmation, 'Method');
    if (!data.length) return [{ method, recipient: undefined, inResponseTo: undefined, notBefore: undefined, notOnOrAfter: undefined }];
    return data.map((d) => ({
      method,
      recipient: attr(d, 'Recipient'),
      inResponseTo: attr(d, 'InResponseTo') || undefined,
      notBefore: instant(attr(d, 'NotBefore'), 'SubjectConfirmationData NotBefore'),
      notOnOrAfter: instant(attr(d, 'NotOnOrAfter'), 'SubjectConfirmationData NotOnOrAfter'),
    }));
  });

  const conditions = nodes(assertion.Conditions);
  if (conditions.length > 1) throw new Error('more than one Conditions');
  const condition = conditions[0];
  const audiences = nodes(condition?.AudienceRestriction).map((restriction) => nodes(restriction.Audience).map((a) => text(a)?.trim() ?? ''));

  const authn = nodes(assertion.AuthnStatement);
  if (!authn.length) throw new Error('no AuthnStatement');
  const attributes = new Map<string, string[]>();
  for (const statement of nodes(assertion.AttributeStatement)) {
    for (const attribute of nodes(statement.Attribute)) {
      const name = attr(attribute, 'Name');
      if (!name) continue;
      const values = nodes(attribute.AttributeValue).map(text).filter((v): v is string => v !== undefined);
      attributes.set(name, [...(attributes.get(name) ?? []), ...values]);
    }
  }

  return {
    id,
    issuer,
    issueInstant,
    nameId,
    nameIdFormat: attr(nameIds[0], 'Format'),
    confirmations,
    notBefore: instant(attr(condition, 'NotBefore'), 'Conditions NotBefore'),
    notOnOrAfter: instant(attr(condition, 'NotOnOrAfter'), 'Conditions NotOnOrAfter'),
    audiences,
    authnInstant: instant(attr(authn[0], 'AuthnInstant'), 'AuthnInstant'),
    sessionIndex: attr(authn[0], 'SessionIndex'),
    attributes,
  };
}
