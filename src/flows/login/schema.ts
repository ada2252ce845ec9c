import { z } from 'zod';
import { MAX_PASSWORD_LENGTH } from '../../identity/accounts.ts';

/** Inputs of the login forms, checked before any handler runs (convention 3). */
export const identifyInput = z.object({
  email: z.string().max(320).default(''),
});

export const passwordInput = z.object({
  email: z.string().max(320).default(''),
  password: z.string().max(MAX_PASSWORD_LENGTH).default(''),
});

/** A 6-digit code or a recovery code (xxxxx-xxxxx), loosely typed by people. */
export const secondStepInput = z.object({
  code: z.string().max(64).default(''),
});

export const reviewInput = z.object({ email: z.string().max(320).default('') });

export const changeEmailInput = z.object({ email: z.string().max(320).default('') });

export const codeInput = z.object({ code: z.string().max(20).default('') });

export const passwordOnlyInput = z.object({ password: z.string().max(MAX_PASSWORD_LENGTH).default('') });
