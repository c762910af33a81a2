/** Workflow and job ids are opaque: 1 to 64 characters of A-Z a-z 0-9 _ - (UUIDs fit). */
export const EXTERNAL_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const EXTERNAL_ID_RULE = '1 to 64 characters of A-Z a-z 0-9 _ -';
/** Internal ids (organisations, keys, operations) are UUIDs. */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
