import { z } from 'zod';
import { MAX_PASSWORD_LENGTH } from '../../identity/password-policy.ts';

/** Where "Back to log in" leads: the login page the person came from, one of ours only (never an open redirect). */
export const BACK_TO_LOGIN = /^\/interaction\/[A-Za-z0-9_-]{1,64}$/;

export const forgotInput = z.object({
  email: z.string().max(320).default(''),
  back: z.string().max(100).optional().transform((value) => (value && BACK_TO_LOGIN.test(value) ? value : undefined)),
});

export const resetInput = z.object({
  token: z.string().max(200).default(''),
  password: z.string().max(MAX_PASSWORD_LENGTH * 4).default(''),
});
