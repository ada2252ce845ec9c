import type SharpModule from 'sharp';

// Loaded at the first upload, not at start: libvips costs ~20 MB of resident memory that a
// process which never receives a picture need not pay (docs/scaling.md, idle memory).
let sharpLoading: Promise<typeof SharpModule> | undefined;
const loadSharp = () => (sharpLoading ??= import('sharp').then((m) => m.default));
import type { Database } from '../persistence/db.ts';
import type { AvatarQueries } from '../persistence/queries/avatars.ts';
import { constantTimeEqual, hmac, sha256 } from '../shared/crypto.ts';

/** The sizes an uploaded picture is stored at (square, pixels). */
export const AVATAR_SIZES = [48, 128, 256] as const;
export const MAX_AVATAR_BYTES = 5 * 1024 * 1024;

/** The version a released address of the generated initials names (an uploaded picture's is its hash). */
const INITIALS = 'initials';

const pictureKeyFor = (key: Buffer, accountId: string, version: string) => hmac(key, `picture:${accountId}:${version}`).slice(0, 22);

/**
 * The picture's address as released to a relying party: the `picture` claim, which "MUST refer to
 * an image file" (OIDC Core §5.1) the relying party can load. The account's uploaded picture or its
 * initials, with a key (`k`, a MAC of the account and the picture's version) that lets whoever
 * holds the address load that image whatever the picture's visibility: the visibility governs
 * other people on our own pages and APIs, not the applications the person released the picture
 * to (decision 0010, revised; decision 0082). A new or removed picture changes the version, and the
 * addresses released before stop working.
 */
export function releasedPictureUrl(key: Buffer, issuer: string, account: { id: string; picture: string | null }): string {
  if (!account.picture) return `${issuer}/avatars/${account.id}.svg?k=${pictureKeyFor(key, account.id, INITIALS)}`;
  const version = new URL(account.picture).searchParams.get('v') ?? '';
  return `${account.picture}${account.picture.includes('?') ? '&' : '?'}k=${pictureKeyFor(key, account.id, version)}`;
}

/** Whether `k` is the key of a released address of this account's picture at `version` (`undefined`: its initials). */
export function releasedPictureKeyHolds(key: Buffer, accountId: string, version: string | undefined, k: unknown): boolean {
  return typeof k === 'string' && constantTimeEqual(k, pictureKeyFor(key, accountId, version ?? INITIALS));
}

export type AvatarResult = { ok: true; pictureUrl: string } | { ok: false; problem: 'avatar.invalid' | 'avatar.too_large' };

/**
 * Uploaded profile pictures (docs/flows/profile.md): decoded and re-encoded with sharp (libvips),
 * so what we serve is always a clean WebP we made, never the uploaded bytes. Orientation from
 * EXIF is applied, metadata (GPS position included) is dropped, the image is cropped to a square
 * and stored at each of AVATAR_SIZES.
 */
export function createAvatarService(deps: { db: Database; avatars: AvatarQueries; issuer: string; pictureKey: Buffer }) {
  const { db, avatars, issuer } = deps;
  const urlFor = (accountId: string, version: string) => `${issuer}/avatars/${accountId}-256.webp?v=${version}`;

  return {
    async upload(accountId: string, bytes: Buffer): Promise<AvatarResult> {
      if (bytes.length > MAX_AVATAR_BYTES) return { ok: false, problem: 'avatar.too_large' };
      let images: Array<{ size: number; image: Buffer }>;
      const sharp = await loadSharp();
      try {
        const meta = await sharp(bytes, { limitInputPixels: 40_000_000 }).metadata();
        if (!meta.format || !['jpeg', 'png', 'webp', 'gif'].includes(meta.format)) return { ok: false, problem: 'avatar.invalid' };
        images = await Promise.all(AVATAR_SIZES.map(async (size) => ({
          size,
          image: await sharp(bytes, { limitInputPixels: 40_000_000 }).rotate().resize(size, size, { fit: 'cover' }).webp({ quality: 85 }).toBuffer(),
        })));
      } catch {
        return { ok: false, problem: 'avatar.invalid' };
      }
      const version = sha256(images.at(-1)!.image.toString('base64')).slice(0, 12);
      const pictureUrl = urlFor(accountId, version);
      await db.transaction((tx) => avatars.replace(tx, accountId, version, images, pictureUrl));
      return { ok: true, pictureUrl };
    },

    async remove(accountId: string): Promise<void> {
      await db.transaction((tx) => avatars.remove(tx, accountId));
    },

    /** The stored image of `size` (one of AVATAR_SIZES). */
    image: (accountId: string, size: number) => avatars.find(accountId, size),

    /** Whether `k` opens this account's picture at `version` (`undefined`: its initials) whatever its visibility. */
    released: (accountId: string, version: string | undefined, k: unknown) => releasedPictureKeyHolds(deps.pictureKey, accountId, version, k),
  };
}

export type AvatarService = ReturnType<typeof createAvatarService>;
