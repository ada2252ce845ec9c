/**
 * Assurance levels: what a login proved, named for relying parties.
 *
 * The `acr` values are advertised in discovery (`acr_values_supported`), accepted in `acr_values`
 * (OIDC Core §3.1.2.1) and put in the ID token (§2). The levels are ordered: a login that reached
 * `2fa` satisfies a request for `1fa`. A federated login (Google, later a company's identity
 * provider) is one factor unless the upstream says it did more (a connector's own mapping, later).
 * `amr` values are RFC 8176's: pwd, otp, mfa, and "fed" for a federated login (not registered in
 * RFC 8176, widely used for it).
 */
export const ACR_ONE_FACTOR = 'urn:lanyard:acr:1fa';
export const ACR_TWO_FACTORS = 'urn:lanyard:acr:2fa';

export const ACR_VALUES = [ACR_ONE_FACTOR, ACR_TWO_FACTORS] as const;
export type Acr = (typeof ACR_VALUES)[number];

const RANK: Record<Acr, number> = { [ACR_ONE_FACTOR]: 1, [ACR_TWO_FACTORS]: 2 };

export function isAcr(value: unknown): value is Acr {
  return typeof value === 'string' && value in RANK;
}

/** The level a set of RFC 8176 methods reached: two factors when "mfa" is among them. */
export function levelOf(amr: readonly string[]): Acr {
  return amr.includes('mfa') ? ACR_TWO_FACTORS : ACR_ONE_FACTOR;
}

/** Whether `reached` satisfies `wanted`. Unknown values satisfy nothing and are asked for nothing. */
export function satisfies(reached: string | undefined, wanted: Acr): boolean {
  return isAcr(reached) && RANK[reached] >= RANK[wanted];
}

/**
 * The level a relying party asks for with `acr_values` (space-separated, in order of preference):
 * the lowest listed level we know, since any of them is acceptable to it. Values we do not know
 * are ignored, as OIDC Core §3.1.2.1 makes `acr_values` a voluntary request.
 */
export function requestedLevel(acrValues: unknown): Acr | undefined {
  if (typeof acrValues !== 'string') return undefined;
  const known = acrValues.split(' ').filter(isAcr);
  if (!known.length) return undefined;
  return known.reduce((low, value) => (RANK[value] < RANK[low] ? value : low));
}
