import { z } from 'zod';
import { MAX_PASSWORD_LENGTH } from '../../identity/password-policy.ts';

export const forgotInput = z.object({ email: z.string().max(320).default('') });

export const resetInput = z.object({
  token: z.string().max(200).default(''),
  password: z.string().max(MAX_PASSWORD_LENGTH * 4).default(''),
});
