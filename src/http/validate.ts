import type { Context } from 'koa';
import type { z } from 'zod';
import { AppError } from '../shared/errors.ts';
import { containsNul } from '../shared/nul.ts';

/**
 * Parses a request body against a route's schema. Form fields that arrive repeated (arrays) or
 * as anything but text are refused as malformed rather than coerced, and so is a NUL anywhere
 * (PostgreSQL text cannot hold one).
 */
export function parseForm<Schema extends z.ZodType>(ctx: Context, schema: Schema): z.infer<Schema> {
  const body = ctx.request.body;
  if (containsNul(body)) throw new AppError('request.invalid_characters', 400);
  const parsed = schema.safeParse(typeof body === 'object' && body !== null ? body : {});
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => i.path.join('.'));
    const tooLong = parsed.error.issues.some((i) => i.code === 'too_big');
    throw new AppError(tooLong ? 'request.field_too_long' : 'request.invalid_body', tooLong ? 413 : 400, { details: { fields } });
  }
  return parsed.data;
}
