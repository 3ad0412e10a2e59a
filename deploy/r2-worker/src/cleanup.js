// Expiry sweep run by the cron trigger. Objects carry customMetadata.expiresAt
// (ISO); R2 lifecycle rules only work in whole days, so we delete hourly.

const DELETE_BATCH = 1000; // R2 delete() accepts at most 1000 keys per call

/**
 * Delete objects whose customMetadata.expiresAt is before `now`.
 * Objects without (or with an unparseable) expiresAt are kept: deleting data
 * we cannot date would be the unsafe mistake.
 * `pageSize` exists so tests can exercise cursor pagination with few objects.
 * Returns { scanned, deleted: [keys] }.
 */
export async function cleanupExpired(bucket, now = new Date(), { pageSize = 1000 } = {}) {
  const nowMs = now instanceof Date ? now.getTime() : new Date(now).getTime();
  const expired = [];
  let scanned = 0;
  let cursor;
  do {
    const page = await bucket.list({ cursor, include: ["customMetadata"], limit: pageSize });
    for (const obj of page.objects) {
      scanned++;
      const at = Date.parse(obj.customMetadata?.expiresAt ?? "");
      if (Number.isFinite(at) && at < nowMs) expired.push(obj.key);
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  // Delete after listing so deletions cannot shift the pagination cursor.
  for (let i = 0; i < expired.length; i += DELETE_BATCH) {
    await bucket.delete(expired.slice(i, i + DELETE_BATCH));
  }
  return { scanned, deleted: expired };
}
