#!/bin/sh
# One-shot set-up of the compose MinIO: the packages bucket (S3_BUCKET; the demo's sample assets go to the
# same bucket since S3_ASSETS_BUCKET is unset). Idempotent: safe on every `docker compose up`.
set -eu

mc alias set local "${MINIO_ENDPOINT:-http://minio:9000}" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"

for bucket in ${BUCKETS:-job-downloads}; do
  mc mb --ignore-existing "local/$bucket"
done

# Incomplete multipart uploads (a worker that died mid-package): on AWS S3 the packages bucket gets the
# lifecycle rule in docker/s3-lifecycle.json (AbortIncompleteMultipartUpload after 1 day):
#   aws s3api put-bucket-lifecycle-configuration --bucket <bucket> --lifecycle-configuration file://docker/s3-lifecycle.json
# MinIO refuses or silently drops that action (minio/minio#15681, #16120, #19115) and `mc ilm rule add` has no
# flag for it. MinIO instead purges uploads older than MINIO_API_STALE_UPLOADS_EXPIRY itself (set to 24h on
# the `minio` service, checked every MINIO_API_STALE_UPLOADS_CLEANUP_INTERVAL), which is the same rule.
mc admin config get local api || true
mc ls local
