import { z } from 'zod';
import { MAX_PASSWORD_LENGTH } from '../../identity/password-policy.ts';

export const changePasswordInput = z.object({
  current: z.string().max(MAX_PASSWORD_LENGTH * 4).default(''),
  password: z.string().max(MAX_PASSWORD_LENGTH * 4).default(''),
});

export const closeAccountInput = z.object({ password: z.string().max(MAX_PASSWORD_LENGTH * 4).default('') });

export const changeEmailInput = z.object({
  email: z.string().max(320).default(''),
  password: z.string().max(MAX_PASSWORD_LENGTH * 4).default(''),
});

export const passwordOnlyInput = z.object({ password: z.string().max(MAX_PASSWORD_LENGTH * 4).default('') });

/** New recovery codes: the password when asked for, or the confirmation page's answer when nothing is to be typed. */
export const newRecoveryCodesInput = passwordOnlyInput.extend({ confirmed: z.literal('yes').optional().catch(undefined) });

export const confirmCodeInput = z.object({ code: z.string().max(64).default('') });

export const disableTwoStepInput = z.object({
  password: z.string().max(MAX_PASSWORD_LENGTH * 4).default(''),
  code: z.string().max(64).default(''),
  /** The confirmation page's answer, asked when nothing is typed (a recent login suffices). */
  confirmed: z.literal('yes').optional().catch(undefined),
});

/** A Trello username or address, and the Trello password. */
export const trelloLoginInput = z.object({
  login: z.string().max(320).default(''),
  password: z.string().max(MAX_PASSWORD_LENGTH * 4).default(''),
  /** This account's current password, when the login is not recent (decision 0087). */
  current: z.string().max(MAX_PASSWORD_LENGTH).default(''),
});

/** The email-change link's token, posted back by its confirmation page's button. */
export const emailVerifyInput = z.object({ token: z.string().max(200).default('') });
