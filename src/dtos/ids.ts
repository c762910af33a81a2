/** Workflow and job ids are opaque: 1 to 64 characters of A-Z a-z 0-9 _ - (UUIDs fit). */
export const EXTERNAL_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const EXTERNAL_ID_RULE = '1 to 64 characters of A-Z a-z 0-9 _ -';
