import { z } from 'zod';

export const createOrganizationInput = z.object({ name: z.string().max(400).default('') });

/** A domain as typed (normalised and judged by src/organizations/domain-name.ts). */
export const addDomainInput = z.object({ domain: z.string().max(1000).default('') });

export const inviteInput = z.object({ email: z.string().max(320).default('') });

/** An admin's edit of a managed account (judged by src/organizations/managed-accounts.ts). */
export const editAccountInput = z.object({ name: z.string().max(400).default(''), email: z.string().max(320).default('') });

/** A confirmed bulk action: the accounts' ids, space-separated (counted and bounded by the route). */
export const bulkInput = z.object({ action: z.enum(['deactivate', 'reactivate', 'delete']), ids: z.string().max(20_000).default('') });

/** Removing a domain or deleting an organization that manages accounts: `release=yes` releases them (decision 0078). */
export const releaseInput = z.object({ release: z.string().max(10).default('') });

/** Deleting an organization: its name, typed again (compared by the route), and the release when it manages accounts. */
export const deleteOrganizationInput = releaseInput.extend({ confirm: z.string().max(400).default('') });
