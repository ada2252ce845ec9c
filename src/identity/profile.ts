import { z } from 'zod';
import { displayText } from '../shared/display-text.ts';
import type { AccountQueries, AccountRow } from '../persistence/queries/accounts.ts';

/**
 * The profile and who may see each field (docs/decisions/0010-profile-visibility.md).
 * Visibility is Anyone / Organization / Only you per field; the email defaults to Only you.
 * A field hidden from a viewer is left out, never blanked. Visibility is about other people;
 * what a relying party receives is what the person granted it (src/identity/claims-release.ts).
 */
export const PROFILE_FIELDS = ['name', 'nickname', 'job_title', 'department', 'organization_name', 'location', 'zoneinfo', 'picture', 'email'] as const;
export type ProfileField = (typeof PROFILE_FIELDS)[number];
export type Visibility = 'anyone' | 'organization' | 'private';
export const VISIBILITIES: readonly Visibility[] = ['anyone', 'organization', 'private'];

export const DEFAULT_VISIBILITY: Record<ProfileField, Visibility> = {
  name: 'anyone',
  nickname: 'anyone',
  picture: 'anyone',
  job_title: 'organization',
  department: 'organization',
  organization_name: 'organization',
  location: 'organization',
  zoneinfo: 'organization',
  email: 'private',
};

/** Who is looking: the person themself, someone of the same organization, or anyone else. */
export type Viewer = 'self' | 'organization' | 'anyone';

export type ProfileRow = AccountRow;

export function visibilityOf(account: Pick<ProfileRow, 'profile_visibility'>): Record<ProfileField, Visibility> {
  const out = { ...DEFAULT_VISIBILITY };
  for (const field of PROFILE_FIELDS) {
    const v = account.profile_visibility?.[field] as Visibility | undefined;
    if (v && VISIBILITIES.includes(v)) out[field] = v;
  }
  return out;
}

export function canSee(viewer: Viewer, visibility: Visibility): boolean {
  if (viewer === 'self') return true;
  if (visibility === 'anyone') return true;
  return visibility === 'organization' && viewer === 'organization';
}

/** Profile fields of `account` that `viewer` may see; missing values and hidden fields are absent. */
export function visibleProfile(account: ProfileRow, viewer: Viewer): Partial<Record<ProfileField, string>> {
  const visibility = visibilityOf(account);
  const out: Partial<Record<ProfileField, string>> = {};
  for (const field of PROFILE_FIELDS) {
    const value = account[field];
    if (typeof value === 'string' && value && canSee(viewer, visibility[field])) out[field] = value;
  }
  return out;
}

/** Initials for the generated avatar: first letters of the first two words of the name. */
export function initialsOf(name: string | null | undefined, email: string): string {
  const words = (name ?? '').trim().split(/\s+/).filter(Boolean);
  const letters = words.length ? words.slice(0, 2).map((w) => [...w][0]!) : [[...email][0] ?? '?'];
  return letters.join('').toUpperCase();
}

/** A square SVG avatar with the person's initials, colour picked from the account id. */
export function initialsAvatar(account: Pick<ProfileRow, 'id' | 'name' | 'email'>): string {
  const palette = ['#0c66e4', '#1f845a', '#ae2e24', '#6e5dc6', '#a54800', '#206a83'];
  const colour = palette[[...account.id].reduce((sum, ch) => sum + ch.charCodeAt(0), 0) % palette.length]!;
  const text = initialsOf(account.name, account.email).replace(/[<>&"']/g, '');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128" viewBox="0 0 128 128" role="img" aria-label="${text}">`
    + `<rect width="128" height="128" rx="64" fill="${colour}"/>`
    + `<text x="64" y="64" dy=".35em" text-anchor="middle" font-family="system-ui, sans-serif" font-size="52" font-weight="600" fill="#ffffff">${text}</text></svg>`;
}

/** What a person may change in their profile (settings page and PATCH /api/profiles/me). */
/**
 * A profile field: the rule for all text shown to others (src/shared/display-text.ts — NFC, no
 * control, zero-width or bidirectional-override characters, something visible); empty clears it.
 */
const text = (max: number) =>
  z.string()
    .refine((value) => displayText(value, max, { allowEmpty: true }).ok, { message: `at most ${max} characters, no control or invisible formatting characters` })
    .transform((value) => (displayText(value, max, { allowEmpty: true }) as { ok: true; value: string }).value)
    .nullable()
    .optional();
export const profileUpdate = z.object({
  name: text(200),
  nickname: text(100),
  job_title: text(200),
  department: text(200),
  organization_name: text(200),
  location: text(200),
  zoneinfo: z.string().trim().max(64).refine((tz) => !tz || Intl.supportedValuesOf('timeZone').includes(tz), { message: 'unknown time zone' }).nullable().optional(),
  visibility: z.partialRecord(z.enum(PROFILE_FIELDS), z.enum(VISIBILITIES as [string, ...string[]])).optional(),
}).strict();

/** Applies a validated update to an account (used by the API and the settings page). */
export type ProfileUpdate = z.infer<typeof profileUpdate>;

export async function applyProfileUpdate(queries: AccountQueries, account: AccountRow, input: ProfileUpdate, now: Date): Promise<void> {
  const pick = (key: keyof typeof input, current: string | null) => (input[key] === undefined ? current : ((input[key] as string | null) || null));
  await queries.updateProfile(account.id, {
    name: pick('name', account.name),
    nickname: pick('nickname', account.nickname),
    job_title: pick('job_title', account.job_title),
    department: pick('department', account.department),
    organization_name: pick('organization_name', account.organization_name),
    location: pick('location', account.location),
    zoneinfo: pick('zoneinfo', account.zoneinfo),
  }, { ...visibilityOf(account), ...(input.visibility ?? {}) }, now);
}

