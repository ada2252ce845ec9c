import { z } from 'zod';
import { MAX_PASSWORD_LENGTH } from '../../identity/password-policy.ts';

export const emailInput = z.object({ email: z.string().max(320).default('') });
export const codeInput = z.object({ code: z.string().max(20).default('') });
export const detailsInput = z.object({
  name: z.string().max(200).default(''),
  password: z.string().max(MAX_PASSWORD_LENGTH * 4).default(''),
});
