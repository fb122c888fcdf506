// What the blob test files share: expected refusals, Azurite deviation marks, SAS URLs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ACCOUNT, KEY, onAzurite, require } from "./target.mjs";

const { StorageSharedKeyCredential, BlobSASPermissions, generateBlobSASQueryParameters } =
  require("@azure/storage-blob");

export const credential = new StorageSharedKeyCredential(ACCOUNT, KEY);

/** Runs `body` and expects the SDK's RestError with this status and code. */
export async function refused(body, status, code) {
  await assert.rejects(body, (e) => {
    assert.equal(e.statusCode, status, `${e.code}: ${e.message}`);
    if (code) assert.equal(e.code, code);
    return true;
  });
}

/** A test Azurite fails because it deviates from Azure's documented behaviour (cited):
 * on Azurite it must still fail, so the day Azurite is fixed the mark is noticed. */
export function deviation(name, reason, body) {
  test(name, async () => {
    if (onAzurite) {
      await assert.rejects(body, undefined, `Azurite now passes; drop the deviation mark: ${reason}`);
    } else {
      await body();
    }
  });
}

/** A feature Azurite does not implement. */
export function azuriteLacks(name, feature, body) {
  deviation(name, `Azurite lacks ${feature}`, body);
}

/** A blob URL with a SAS of `permissions` (snapshot: for one of its snapshots). */
export function sasUrl(blob, permissions, snapshot) {
  const sas = generateBlobSASQueryParameters(
    {
      containerName: blob.containerName,
      blobName: blob.name,
      snapshotTime: snapshot,
      permissions: BlobSASPermissions.parse(permissions),
      expiresOn: new Date(Date.now() + 3600_000),
    },
    credential,
  ).toString();
  return snapshot ? `${blob.url}?snapshot=${encodeURIComponent(snapshot)}&${sas}` : `${blob.url}?${sas}`;
}
