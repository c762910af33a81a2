/** The service's BullMQ queues. Each has one Queue object per process (QueuesModule). */
export const PACKAGING_QUEUE = 'packaging';
export const MAINTENANCE_QUEUE = 'maintenance';

/** A packaging job builds one download operation; its BullMQ job id is the operation id. */
export const PACKAGE_JOB = 'package';

export interface PackageJobData {
  operationId: string;
  /** The token of the admission this job runs under (FairShare); its worker releases the slot with it. */
  admission?: string;
}

export const WEBHOOK_QUEUE = 'webhooks';
export const WEBHOOK_JOB = 'deliver';

/** One event to one endpoint; the BullMQ job id is `<event id>.<endpoint id>`. */
export interface WebhookJobData {
  eventId: string;
  endpointId: string;
  /** Attempts already made and recorded before this job: a delivery queued again after Redis lost it. */
  attemptsBefore?: number;
}
