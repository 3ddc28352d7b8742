"""BotocoreS3Client: the S3Client of s3client.py on botocore, path-style addressing.

Transient failures (5xx, throttling, refused or dropped connections, timeouts) are retried by botocore
a bounded number of times with exponential backoff ("standard" retry mode), then raised as
StoreUnavailable (the client sees a retryable 503).

botocore rather than boto3: boto3's client *is* botocore's (same credential chain, retries, signing);
its extras (resources, s3transfer's multipart manager) are not used, so the `s3` extra stays one
package smaller.  aiobotocore would save the thread hop but pins botocore to narrow ranges and adds
aiohttp; with a thread pool of blocking calls, put_blocks of 64 MiB to moto on loopback ran at ~55-60
MB/s using 15% of a core in the store's process (moto was the limit), so the thread hop is not what
costs.  This module is imported only for an s3:// blob URL.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from typing import Any

import botocore.config  # type: ignore[import-untyped]
import botocore.exceptions  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]

from localbox.domain.errors import StoreUnavailable
from localbox.stores.s3client import ObjectInfo, S3Location

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
                    "ServiceUnavailable", "InternalError"}
_TRANSIENT_ERRORS = (
    botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ResponseStreamingError, botocore.exceptions.IncompleteReadError,
    botocore.exceptions.HTTPClientError,
)

# Answers meaning "these credentials may not do this" (S3 and the common S3-compatibles).
_REFUSED_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
                  "ExpiredToken", "AllAccessDisabled", "AuthorizationHeaderMalformed"}


def _unavailable(e: Exception) -> StoreUnavailable:
    err = StoreUnavailable(f"object store unavailable: {type(e).__name__}: {e}")
    err.__cause__ = e
    return err


def _is_transient(e: botocore.exceptions.ClientError) -> bool:
    status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return status >= 500 or status == 429 or e.response.get("Error", {}).get("Code") in _TRANSIENT_CODES


def _is_missing(e: botocore.exceptions.ClientError) -> bool:
    return str(e.response.get("Error", {}).get("Code")) in _NOT_FOUND


class BotocoreS3Client:
    """Path-style addressing: what self-hosted S3-compatibles expect, and AWS still serves.

    `attempts` and the timeouts bound how long a dead endpoint can hold a request before it becomes a
    503: about attempts x (connect_timeout + backoff) when nothing answers, attempts x read_timeout when
    a connection hangs mid-response.
    """

    def __init__(self, location: S3Location, *, max_connections: int = 16, attempts: int = 3,
                 connect_timeout: float = 3.0, read_timeout: float = 20.0) -> None:
        self.bucket = location.bucket
        self.endpoint_url = location.endpoint_url
        config = botocore.config.Config(
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "total_max_attempts": attempts},
            connect_timeout=connect_timeout, read_timeout=read_timeout,
            max_pool_connections=max_connections,
            # Only the payload checksum S3 has always had: newer default checksums (CRC32 trailers)
            # are not implemented by every S3-compatible.
            request_checksum_calculation="when_required", response_checksum_validation="when_required",
        )
        session = botocore.session.get_session()
        kwargs: dict[str, Any] = {"endpoint_url": location.endpoint_url, "region_name": location.region or None}
        if location.access_key is not None:
            kwargs.update(aws_access_key_id=location.access_key, aws_secret_access_key=location.secret_key)
        self._s3 = session.create_client("s3", config=config, **kwargs)

    def _call(self, op: str, **params: Any) -> Any:
        try:
            return getattr(self._s3, op)(Bucket=self.bucket, **params)
        except botocore.exceptions.ClientError as e:
            if _is_transient(e):
                raise _unavailable(e) from e
            raise
        except _TRANSIENT_ERRORS as e:
            raise _unavailable(e) from e

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        self._call("put_object", Key=key, Body=bytes(data) if isinstance(data, memoryview) else data)

    def get(self, key: str, start: int = 0, end: int | None = None) -> bytes | None:
        params: dict[str, Any] = {"Key": key}
        if start or end is not None:
            if end is not None and end <= start:
                return b""
            params["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            response = self._call("get_object", **params)
            body = response["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
            return data
        except botocore.exceptions.ClientError as e:
            if _is_missing(e):
                return None
            raise
        except _TRANSIENT_ERRORS as e:  # a stream cut while reading the body
            raise _unavailable(e) from e

    def head(self, key: str) -> ObjectInfo | None:
        try:
            response = self._call("head_object", Key=key)
        except botocore.exceptions.ClientError as e:
            if _is_missing(e):
                return None
            raise
        return ObjectInfo(key, int(response["ContentLength"]), _timestamp(response["LastModified"]))

    def touch(self, key: str) -> bool:
        try:
            # A copy onto itself must change something (S3 refuses an identical one): new user metadata.
            self._call("copy_object", Key=key, CopySource={"Bucket": self.bucket, "Key": key},
                       MetadataDirective="REPLACE", Metadata={"renewed": f"{time.time():.3f}"})
        except botocore.exceptions.ClientError as e:
            if _is_missing(e) or e.response.get("Error", {}).get("Code") == "NoSuchKey":
                return False
            raise
        return True

    def copy(self, src: str, dst: str) -> bool:
        try:
            self._call("copy_object", Key=dst, CopySource={"Bucket": self.bucket, "Key": src})
        except botocore.exceptions.ClientError as e:
            if _is_missing(e):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self._call("delete_object", Key=key)

    def check(self, prefix: str) -> None:
        """See S3Client.check; botocore's own retries apply (a dead endpoint answers in a few seconds)."""
        where = self.endpoint_url or "AWS S3"
        try:
            self._s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        except botocore.exceptions.NoCredentialsError:
            raise StoreUnavailable("no S3 credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                                   "an AWS profile or role, or access_key/secret_key in the URL)") from None
        except botocore.exceptions.ClientError as e:
            error = e.response.get("Error", {})
            code = str(error.get("Code") or "")
            status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            detail = " ".join(f"{code}: {error.get('Message') or ''}".split())
            if code == "NoSuchBucket" or (status == 404 and not code):
                raise StoreUnavailable(f"bucket {self.bucket!r} does not exist at {where}") from None
            if status in (401, 403) or code in _REFUSED_CODES:
                raise StoreUnavailable(
                    f"{where} refused the credentials for bucket {self.bucket!r} ({detail})") from None
            raise StoreUnavailable(f"{where} answered {status} for bucket {self.bucket!r} ({detail})") from None
        except (*_TRANSIENT_ERRORS, botocore.exceptions.BotoCoreError) as e:
            raise StoreUnavailable(f"cannot reach the S3 endpoint {where}: {' '.join(str(e).split())}") from None

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Prefix": prefix, "MaxKeys": 1000}
            if token:
                params["ContinuationToken"] = token
            page = self._call("list_objects_v2", **params)
            for obj in page.get("Contents", ()):
                yield ObjectInfo(obj["Key"], int(obj["Size"]), _timestamp(obj["LastModified"]))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return


def _timestamp(value: datetime.datetime) -> float:
    return value.timestamp()
