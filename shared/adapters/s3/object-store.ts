// The commands only, not the aggregated `S3` class: the Lambda bundle keeps just what is sent.
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ObjectNotFoundError } from '../../ports/errors.ts';
import { assertObjectKey, assertObjectKeySegment, type ObjectStore } from '../../ports/object-store.ts';

/** Options of {@link S3ObjectStore}. */
export interface S3ObjectStoreOptions {
  /**
   * The client (its region, credentials, endpoint). For fauxqs: its
   * endpoint, and `forcePathStyle: true` (no DNS for `<bucket>.<host>`).
   */
  readonly client: S3Client;
  /** The bucket (it must exist; the CDK construct and the local stack create it). */
  readonly bucket: string;
}

/** DeleteObject requests `deleteFolder` keeps in flight at once. */
const DELETE_CONCURRENCY = 8;

/** Whether an SDK error is S3's "no such key" (checked by name: robust to duplicated SDK copies). */
function isNoSuchKey(err: unknown): boolean {
  return err instanceof Error && err.name === 'NoSuchKey';
}

/**
 * Objects in an S3 bucket, one object per key, in one PutObject, GetObject
 * or DeleteObject request each (a single PUT takes up to 5 GB); a
 * `deleteFolder` lists the folder (ListObjectsV2, 1,000 keys a page) and
 * deletes each object.
 *
 * S3 gives what the port promises: a PUT is atomic and overwrites, reads
 * after a write are strongly consistent, a DELETE of a missing key succeeds.
 * A missing key is `NoSuchKey` (404) only for a caller allowed
 * `s3:ListBucket` on the bucket; without it S3 answers 403 AccessDenied, so
 * the construct grants it (see `infra/payloads.ts`). Other SDK errors
 * (throttling after the SDK's own retries, permissions, a missing bucket)
 * are thrown as they are.
 *
 * @example
 * ```ts
 * const objects = new S3ObjectStore({ client: new S3Client({}), bucket: process.env.SAYIIR_PAYLOAD_BUCKET! });
 * await objects.put('i-1/out:a', '{"ok":true}');
 * ```
 */
export class S3ObjectStore implements ObjectStore {
  private readonly client: S3Client;
  private readonly bucket: string;

  constructor(options: S3ObjectStoreOptions) {
    this.client = options.client;
    this.bucket = options.bucket;
  }

  async put(key: string, body: Uint8Array | string): Promise<void> {
    assertObjectKey(key);
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        Body: body,
        ContentType: typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/octet-stream',
      }),
    );
  }

  async get(key: string): Promise<Uint8Array> {
    assertObjectKey(key);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!out.Body) throw new Error(`GetObject '${key}' returned no body`);
      return await out.Body.transformToByteArray();
    } catch (err) {
      if (isNoSuchKey(err)) throw new ObjectNotFoundError(key);
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    assertObjectKey(key);
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /**
   * Lists the folder page by page and deletes each page's objects,
   * {@link DELETE_CONCURRENCY} at a time, before reading the next page (the
   * continuation token is a position in key order, which the deletions do
   * not move). One DeleteObject per key, not DeleteObjects: that one needs a
   * Content-MD5 or checksum header, which not every S3 emulator accepts.
   */
  async deleteFolder(segment: string): Promise<number> {
    assertObjectKeySegment(segment);
    const prefix = `${segment}/`;
    let deleted = 0;
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix,
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }),
      );
      const keys = (page.Contents ?? []).flatMap((o) => (o.Key?.startsWith(prefix) ? [o.Key] : []));
      for (let i = 0; i < keys.length; i += DELETE_CONCURRENCY) {
        await Promise.all(
          keys
            .slice(i, i + DELETE_CONCURRENCY)
            .map((key) => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }))),
        );
      }
      deleted += keys.length;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return deleted;
  }
}
