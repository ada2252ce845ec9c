import { z } from 'zod';

export const createOrganizationInput = z.object({ name: z.string().max(400).default('') });

/** A domain as typed (normalised and judged by src/organizations/domain-name.ts). */
export const addDomainInput = z.object({ domain: z.string().max(1000).default('') });

export const inviteInput = z.object({ email: z.string().max(320).default('') });
