import type { Context } from 'koa';
import { z } from 'zod';
import { containsNul } from '../../shared/nul.ts';
import { apiError } from './errors.ts';

/**
 * The management API's input: the shape is checked here (types, lengths, no unknown members, so a
 * misspelt parameter is an error and not silently ignored); what the values mean (a domain name,
 * an address, a state) is the organization services' to check, with their own codes.
 */

/** `limit`: 1–100 as digits only ("1e2" and " 5" are not limits). */
const limit = z.string().regex(/^\d{1,3}$/).transform(Number).pipe(z.number().int().min(1).max(100)).optional();

export const pageQuery = z.strictObject({
  cursor: z.string().min(1).max(320).optional(),
  limit,
});

/** Managed accounts: `q` a prefix of address or name, `status` a state, keyset paging. */
export const accountsQuery = z.strictObject({
  q: z.string().max(320).optional(),
  status: z.enum(['active', 'deactivated', 'pending_deletion']).optional(),
  cursor: z.string().min(1).max(320).optional(),
  limit,
});

export const accountsExportQuery = accountsQuery.pick({ q: true, status: true });

/** The audit log's cursor is the id of the last record of the previous page. */
export const auditQuery = z.strictObject({
  cursor: z.string().regex(/^\d{1,18}$/).optional(),
  limit,
});

export const noQuery = z.strictObject({});

export const domainInput = z.strictObject({ domain: z.string().max(1000) });

/** Removing a domain or deleting an organization: `release=true` releases the accounts it manages (decision 0078). */
export const releaseQuery = z.strictObject({ release: z.enum(['true', 'false']).optional() });

export const organizationUpdate = z.strictObject({ name: z.string().max(1000) });

export const invitationInput = z.strictObject({ email: z.string().max(1000) });

/** Name and/or address; `name: null` (or "") clears the name. */
export const accountUpdate = z.strictObject({
  name: z.string().max(1000).nullable().optional(),
  email: z.string().max(1000).optional(),
}).refine((body) => body.name !== undefined || body.email !== undefined, { message: 'name or email', path: ['name'] });

function parse<Schema extends z.ZodType>(input: unknown, schema: Schema, code: 'request.invalid_body' | 'request.invalid_query'): z.infer<Schema> {
  // PostgreSQL text cannot hold a NUL: refused here rather than by the database.
  if (containsNul(input)) throw apiError('request.invalid_characters');
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw apiError(code, { fields: [...new Set(parsed.error.issues.map((i) => i.path.join('.') || (i.code === 'unrecognized_keys' ? i.keys.join(',') : '(root)')))] });
  }
  return parsed.data;
}

/** The query string against `schema` (a repeated parameter arrives as a list and is refused). */
export function parseQuery<Schema extends z.ZodType>(ctx: Context, schema: Schema): z.infer<Schema> {
  return parse({ ...ctx.query }, schema, 'request.invalid_query');
}

/** The JSON body against `schema`; a body that is not JSON is 415. */
export function parseBody<Schema extends z.ZodType>(ctx: Context, schema: Schema): z.infer<Schema> {
  if (!ctx.is('application/json')) throw apiError('request.unsupported_media_type');
  const body: unknown = ctx.request.body;
  return parse(typeof body === 'object' && body !== null && !Array.isArray(body) ? body : undefined, schema, 'request.invalid_body');
}
