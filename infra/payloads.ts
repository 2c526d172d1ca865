import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

/** Props of {@link SayiirPayloads}. */
export interface SayiirPayloadsProps {
  /**
   * How long an object is kept after it was written; S3 counts whole days,
   * so a part of a day is rounded up. Expiry counts from the write, not from
   * the end of the run, so the engine sets none: a run that lives long must
   * not lose its values.
   * @default no expiry
   */
  readonly expiration?: Duration;
  /**
   * Customer-managed KMS key (the tables' key): SSE-KMS with an S3 Bucket
   * Key, so S3 asks KMS for a data key about once per bucket and period, not
   * once per object.
   * @default S3-managed keys (SSE-S3), the counterpart of the tables' AWS-managed key
   */
  readonly encryptionKey?: IKey;
  /**
   * What happens to the bucket when it leaves the stack. CloudFormation
   * deletes only an empty bucket: with DESTROY, a bucket still holding
   * objects fails to delete until they expire or are emptied.
   * @default RemovalPolicy.RETAIN (it holds the workflows' values)
   */
  readonly removalPolicy?: RemovalPolicy;
}

/** S3 counts a lifecycle expiration in whole days. */
function wholeDays(duration: Duration): Duration {
  return Duration.days(Math.max(1, Math.ceil(duration.toSeconds() / 86_400)));
}

/**
 * The bucket of offloaded payloads (values over the inline threshold of
 * `shared/runtime/payloads.ts`): private (all public access blocked, ACLs
 * disabled), TLS 1.2+ only, encrypted at rest like the tables, unversioned
 * (a referenced payload is never rewritten, so old versions would only be
 * stored and billed), objects expired
 * `expiration` after they were written and incomplete multipart uploads
 * aborted after a day. The physical name is left to CloudFormation; the
 * functions get it through `SAYIIR_PAYLOAD_BUCKET`.
 *
 * Expiry counts from an object's creation, not from the end of its run: a
 * run that lives longer than `expiration` loses its offloaded values.
 *
 * @example
 * ```ts
 * const payloads = new SayiirPayloads(this, 'Payloads', { expiration: Duration.days(30) });
 * payloads.grantReadWrite(workerFunction);
 * ```
 */
export class SayiirPayloads extends Construct {
  /** The payload bucket. */
  readonly bucket: Bucket;
  private readonly encryptionKey: IKey | undefined;

  constructor(scope: Construct, id: string, props: SayiirPayloadsProps) {
    super(scope, id);
    this.encryptionKey = props.encryptionKey;
    this.bucket = new Bucket(this, 'Bucket', {
      ...(props.encryptionKey
        ? { encryption: BucketEncryption.KMS, encryptionKey: props.encryptionKey, bucketKeyEnabled: true }
        : { encryption: BucketEncryption.S3_MANAGED }),
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: false,
      lifecycleRules: [
        {
          id: 'ExpirePayloads',
          ...(props.expiration ? { expiration: wholeDays(props.expiration) } : {}),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
  }

  /**
   * What `S3ObjectStore` needs, and nothing more: `s3:GetObject`,
   * `s3:PutObject`, `s3:DeleteObject` on the bucket's objects;
   * `s3:ListBucket` on the bucket, without which S3 answers a missing key
   * with 403 instead of 404; and, with a customer-managed key, encrypt and
   * decrypt on that key.
   *
   * @example
   * ```ts
   * payloads.grantReadWrite(apiFunction);
   * ```
   */
  grantReadWrite(grantee: IGrantable): void {
    Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
      resourceArns: [this.bucket.arnForObjects('*')],
    });
    Grant.addToPrincipal({ grantee, actions: ['s3:ListBucket'], resourceArns: [this.bucket.bucketArn] });
    this.encryptionKey?.grantEncryptDecrypt(grantee);
  }
}
