//! A blocking S3 client: each request is signed by `rusty-s3` (SigV4, presigned, sans-IO) and
//! sent by `ureq`, so uploads and ranged reads run on plain threads like every other part of
//! exhibit, with no async runtime.
//!
//! Every request carries `x-amz-content-sha256` (the SHA-256 of its body, signed with the
//! other headers), bodies carry a CRC64NVME the server checks (`x-amz-checksum-crc64nvme`),
//! each request has bounded timeouts, a transient failure (connection refused or reset, a
//! timeout, 5xx, `SlowDown`) is retried a bounded number of times with a growing pause, and a
//! refusal becomes one line (`AccessDenied: …`) that never carries the secret.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use rusty_s3::actions::{
    AbortMultipartUpload, CreateMultipartUpload, DeleteObject, GetObject, HeadObject,
    ListObjectsV2, PutObject, S3Action, UploadPart,
};
use rusty_s3::{Bucket, UrlStyle};

use super::checksum::{crc64nvme_header, hex_sha256, parse_crc64nvme, part_digests};
use super::config::{S3Config, Secret};
use super::xml::{error_fields, one_line, xml_blocks, xml_escape, xml_field};
use crate::error::{Error, Result};

/// How long a signed request stays valid: long enough for a slow part upload with retries.
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(3600);
/// An XML answer (a listing page of 1,000 keys, an error) is far below this.
const XML_LIMIT: u64 = 8 << 20;
/// SHA-256 of nothing: the body hash of a request without a body.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// How often and how patiently a transient failure is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// The pause before the second attempt; it doubles for each next one, up to 8 s.
    pub first_pause: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            first_pause: Duration::from_millis(250),
        }
    }
}

/// Timeouts of one request. A stalled server fails the request (and so, after the retries,
/// the job) instead of hanging it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting (TCP and TLS).
    pub connect: Duration,
    /// Sending a body (a part of up to a few hundred MiB).
    pub send_body: Duration,
    /// Waiting for the answer's status line after the request was sent.
    pub response: Duration,
    /// Reading the answer's body.
    pub recv_body: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            send_body: Duration::from_secs(600),
            response: Duration::from_secs(120),
            recv_body: Duration::from_secs(600),
        }
    }
}

/// What `HEAD` says about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectHead {
    /// Its length in bytes.
    pub size: u64,
    /// Its ETag, quotes removed.
    pub etag: Option<String>,
    /// The full-object CRC64NVME the server stored (`x-amz-checksum-crc64nvme`), if any.
    pub crc64nvme: Option<u64>,
    /// `FULL_OBJECT` or `COMPOSITE`, when the server says.
    pub checksum_type: Option<String>,
    /// User metadata (`x-amz-meta-NAME`), names lowercase without the prefix, sorted.
    pub metadata: Vec<(String, String)>,
    /// The Object Lock mode the server applied (`x-amz-object-lock-mode`), if any.
    pub lock_mode: Option<String>,
}

/// One object of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedObject {
    /// Its key.
    pub key: String,
    /// Its length in bytes.
    pub size: u64,
}

/// A multipart upload begun and not yet completed or aborted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingUpload {
    /// The object's key.
    pub key: String,
    /// The upload's id.
    pub upload_id: String,
}

/// A part uploaded: what completing the upload names it by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadedPart {
    /// 1 to 10,000.
    pub number: u16,
    /// The ETag the server gave it, quotes removed.
    pub etag: String,
    /// Its CRC64NVME, checked by the server on arrival.
    pub crc64nvme: u64,
}

/// S3 Object Lock retention for the objects written.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ObjectLock {
    /// `GOVERNANCE` or `COMPLIANCE`.
    pub mode: String,
    /// RFC 3339 time until which the objects cannot be deleted or overwritten.
    pub retain_until: String,
}

/// What goes with every object written: user metadata and retention.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// User metadata (`x-amz-meta-NAME: VALUE`); names lowercase ASCII, values printable ASCII.
    pub metadata: Vec<(String, String)>,
    /// Object Lock retention, when asked for.
    pub lock: Option<ObjectLock>,
}

/// A connection to one bucket. `Send + Sync`: several threads share one client (and its pool
/// of kept-alive connections) to keep several parts or ranges in flight.
pub struct Client {
    bucket: Bucket,
    credentials: rusty_s3::Credentials,
    secret: Secret,
    agent: ureq::Agent,
    retry: RetryPolicy,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("bucket", &self.bucket.name())
            .field("endpoint", &self.bucket.base_url().as_str())
            .field("access_key_id", &self.credentials.key())
            .finish_non_exhaustive()
    }
}

/// A request to send: method, signed URL, the headers that were signed, and a body.
struct Request<'b> {
    method: rusty_s3::Method,
    url: url::Url,
    headers: Vec<(String, String)>,
    body: Option<&'b [u8]>,
}

/// An answer: its status, headers and (bounded) body.
struct Reply {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Why an attempt failed, and whether another could help.
struct Failure {
    message: String,
    transient: bool,
    status: Option<u16>,
}

impl Client {
    /// A client for `bucket` with `config`'s endpoint, region and credentials.
    pub fn new(config: &S3Config, bucket: &str) -> Result<Client> {
        Self::with_policy(config, bucket, RetryPolicy::default(), Timeouts::default())
    }

    /// [`Client::new`] with chosen retries and timeouts (tests use short ones).
    pub fn with_policy(
        config: &S3Config,
        bucket: &str,
        retry: RetryPolicy,
        timeouts: Timeouts,
    ) -> Result<Client> {
        let shown = format!("s3://{bucket}");
        let endpoint: url::Url = config.endpoint.parse().map_err(|e| {
            Error::InvalidOption(format!(
                "S3 endpoint {}: {e}",
                crate::text::printable(&config.endpoint)
            ))
        })?;
        let style = if config.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(endpoint, style, bucket.to_string(), config.region.clone())
            .map_err(|e| Error::Storage {
                url: shown,
                message: format!("cannot address the bucket at {}: {e}", config.endpoint),
            })?;
        let c = &config.credentials;
        let credentials = match &c.session_token {
            Some(token) => rusty_s3::Credentials::new_with_token(
                c.access_key_id.clone(),
                c.secret_access_key.expose(),
                token.expose(),
            ),
            None => {
                rusty_s3::Credentials::new(c.access_key_id.clone(), c.secret_access_key.expose())
            }
        };
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_connect(Some(timeouts.connect))
                .timeout_send_request(Some(timeouts.response))
                .timeout_send_body(Some(timeouts.send_body))
                .timeout_recv_response(Some(timeouts.response))
                .timeout_recv_body(Some(timeouts.recv_body))
                .user_agent(format!("{}/{}", crate::TOOL_NAME, crate::VERSION))
                .build(),
        );
        Ok(Client {
            bucket,
            credentials,
            secret: c.secret_access_key.clone(),
            agent,
            retry: RetryPolicy {
                attempts: retry.attempts.max(1),
                ..retry
            },
        })
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        self.bucket.name()
    }

    /// `s3://BUCKET/KEY`, how errors and the record name an object.
    pub fn url_of(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket.name())
    }

    /// The object's length, checksum and metadata; `None` when there is no such object.
    pub fn head_object(&self, key: &str) -> Result<Option<ObjectHead>> {
        let reply = self.send("HEAD", key, &[404], None, || {
            let mut a = HeadObject::new(&self.bucket, Some(&self.credentials), key);
            a.headers_mut().insert("x-amz-checksum-mode", "ENABLED");
            a.headers_mut().insert("x-amz-content-sha256", EMPTY_SHA256);
            self.request(a)
        })?;
        if reply.status == 404 {
            return Ok(None);
        }
        let size = reply
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| self.error(key, "HEAD", "the answer has no Content-Length"))?;
        let mut metadata: Vec<(String, String)> = reply
            .headers
            .iter()
            .filter_map(|(name, value)| {
                let name = name.as_str().strip_prefix("x-amz-meta-")?;
                Some((name.to_string(), value.to_str().ok()?.to_string()))
            })
            .collect();
        metadata.sort();
        Ok(Some(ObjectHead {
            size,
            etag: reply.header("etag").map(unquote),
            crc64nvme: reply
                .header("x-amz-checksum-crc64nvme")
                .and_then(parse_crc64nvme),
            checksum_type: reply.header("x-amz-checksum-type").map(str::to_string),
            metadata,
            lock_mode: reply.header("x-amz-object-lock-mode").map(str::to_string),
        }))
    }

    /// The bytes `range` of the object: exactly that many, or an error (a short answer is a
    /// truncated object or a server fault, never data).
    pub fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>> {
        let len = range.end.saturating_sub(range.start);
        if len == 0 {
            return Ok(Vec::new());
        }
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        let reply = self.send_limited("GET", key, &[], None, len, || {
            let mut a = GetObject::new(&self.bucket, Some(&self.credentials), key);
            a.headers_mut().insert("range", header.as_str());
            a.headers_mut().insert("x-amz-content-sha256", EMPTY_SHA256);
            self.request(a)
        })?;
        if reply.status != 206 && !(reply.status == 200 && range.start == 0) {
            return Err(self.error(
                key,
                "GET",
                &format!(
                    "asked for bytes {}..{}, got status {}",
                    range.start, range.end, reply.status
                ),
            ));
        }
        if reply.body.len() as u64 != len {
            return Err(self.error(
                key,
                "GET",
                &format!(
                    "asked for bytes {}..{}, got {} bytes (the object is shorter?)",
                    range.start,
                    range.end,
                    reply.body.len()
                ),
            ));
        }
        Ok(reply.body)
    }

    /// The whole object, refused when it is longer than `limit` bytes.
    pub fn get_object(&self, key: &str, limit: u64) -> Result<Vec<u8>> {
        let reply = self.send_limited("GET", key, &[], None, limit, || {
            let mut a = GetObject::new(&self.bucket, Some(&self.credentials), key);
            a.headers_mut().insert("x-amz-content-sha256", EMPTY_SHA256);
            self.request(a)
        })?;
        Ok(reply.body)
    }

    /// Writes `body` as the object `key` in one request, with its CRC64NVME for the server to
    /// check; returns that CRC.
    pub fn put_object(&self, key: &str, body: &[u8], options: &PutOptions) -> Result<u64> {
        let (crc, sha) = part_digests(body);
        let crc_header = crc64nvme_header(crc);
        self.send("PUT", key, &[], Some(body), || {
            let mut a = PutObject::new(&self.bucket, Some(&self.credentials), key);
            let h = a.headers_mut();
            h.insert("x-amz-checksum-crc64nvme", crc_header.as_str());
            h.insert("x-amz-content-sha256", sha.as_str());
            add_put_options(h, options);
            self.request(a)
        })?;
        Ok(crc)
    }

    /// Every object whose key starts with `prefix`, refused past `limit` objects.
    pub fn list_objects(&self, prefix: &str, limit: usize) -> Result<Vec<ListedObject>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let reply = self.send("LIST", prefix, &[], None, || {
                let mut a = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
                a.with_prefix(prefix);
                if let Some(t) = &token {
                    a.with_continuation_token(t.as_str());
                }
                a.headers_mut().insert("x-amz-content-sha256", EMPTY_SHA256);
                self.request(a)
            })?;
            let text = String::from_utf8_lossy(&reply.body);
            let page = ListObjectsV2::parse_response(&text)
                .map_err(|e| self.error(prefix, "LIST", &format!("unreadable listing: {e}")))?;
            for c in page.contents {
                out.push(ListedObject {
                    key: c.key,
                    size: c.size.unwrap_or(0),
                });
            }
            if out.len() > limit {
                return Err(self.error(
                    prefix,
                    "LIST",
                    &format!("more than {limit} objects under this prefix"),
                ));
            }
            match page.next_continuation_token {
                Some(t) if !t.is_empty() && token.as_deref() != Some(t.as_str()) => token = Some(t),
                _ => return Ok(out),
            }
        }
    }

    /// Deletes the object (no error when it does not exist).
    pub fn delete_object(&self, key: &str) -> Result<()> {
        self.send("DELETE", key, &[404], None, || {
            let mut a = DeleteObject::new(&self.bucket, Some(&self.credentials), key);
            a.headers_mut().insert("x-amz-content-sha256", EMPTY_SHA256);
            self.request(a)
        })?;
        Ok(())
    }

    /// Begins a multipart upload whose parts carry CRC64NVME and whose completed object has a
    /// FULL_OBJECT CRC64NVME (comparable with one computed here); returns its upload id.
    pub fn create_multipart(&self, key: &str, options: &PutOptions) -> Result<String> {
        let reply = self.send("CREATE UPLOAD", key, &[], Some(&[]), || {
            let mut a = CreateMultipartUpload::new(&self.bucket, Some(&self.credentials), key);
            let h = a.headers_mut();
            h.insert("x-amz-checksum-algorithm", "CRC64NVME");
            h.insert("x-amz-checksum-type", "FULL_OBJECT");
            h.insert("x-amz-content-sha256", EMPTY_SHA256);
            add_put_options(h, options);
            self.request(a)
        })?;
        let text = String::from_utf8_lossy(&reply.body);
        let parsed = CreateMultipartUpload::parse_response(&text)
            .map_err(|e| self.error(key, "CREATE UPLOAD", &format!("unreadable answer: {e}")))?;
        Ok(parsed.upload_id().to_string())
    }

    /// Uploads part `number` (1 to 10,000) of an upload, with its CRC64NVME for the server
    /// to check.
    pub fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u16,
        body: &[u8],
    ) -> Result<UploadedPart> {
        let (crc, sha) = part_digests(body);
        let crc_header = crc64nvme_header(crc);
        let what = format!("UPLOAD PART {number}");
        let reply = self.send(&what, key, &[], Some(body), || {
            let mut a = UploadPart::new(
                &self.bucket,
                Some(&self.credentials),
                key,
                number,
                upload_id,
            );
            a.headers_mut()
                .insert("x-amz-checksum-crc64nvme", crc_header.as_str());
            a.headers_mut().insert("x-amz-content-sha256", sha.as_str());
            self.request(a)
        })?;
        let etag = reply
            .header("etag")
            .map(unquote)
            .ok_or_else(|| self.error(key, &what, "the answer has no ETag"))?;
        Ok(UploadedPart {
            number,
            etag,
            crc64nvme: crc,
        })
    }

    /// Completes an upload from its `parts` (in order), asking the server to check the whole
    /// object's CRC64NVME against `full_crc64nvme`; then reads the completed object's
    /// checksum back and compares it too. Returns the object's ETag.
    pub fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[UploadedPart],
        full_crc64nvme: u64,
    ) -> Result<String> {
        let mut body = String::from("<CompleteMultipartUpload>");
        for p in parts {
            body.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>\"{}\"</ETag>\
                 <ChecksumCRC64NVME>{}</ChecksumCRC64NVME></Part>",
                p.number,
                xml_escape(&p.etag),
                crc64nvme_header(p.crc64nvme)
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        let body = body.into_bytes();
        let sha = hex_sha256(&body);
        let full = crc64nvme_header(full_crc64nvme);
        let reply = self.send("COMPLETE UPLOAD", key, &[], Some(&body), || {
            let etags = parts.iter().map(|p| p.etag.as_str());
            let mut a = rusty_s3::actions::CompleteMultipartUpload::new(
                &self.bucket,
                Some(&self.credentials),
                key,
                upload_id,
                etags,
            );
            a.headers_mut()
                .insert("x-amz-checksum-crc64nvme", full.as_str());
            a.headers_mut().insert("x-amz-checksum-type", "FULL_OBJECT");
            a.headers_mut().insert("x-amz-content-sha256", sha.as_str());
            self.request(a)
        })?;
        // A 200 can still carry an error (S3 reports a failure found while assembling the
        // parts in the body of a 200).
        let text = String::from_utf8_lossy(&reply.body);
        if text.contains("<Error>") {
            let (code, message) = error_fields(&text);
            return Err(self.error(key, "COMPLETE UPLOAD", &self.refusal(200, &code, &message)));
        }
        let etag = xml_field(&text, "ETag")
            .map(|e| unquote(&e))
            .unwrap_or_default();
        let head = self.head_object(key)?.ok_or_else(|| {
            self.error(key, "COMPLETE UPLOAD", "the completed object is not there")
        })?;
        match head.crc64nvme {
            Some(crc) if crc == full_crc64nvme => Ok(etag),
            Some(crc) => Err(self.error(
                key,
                "COMPLETE UPLOAD",
                &format!(
                    "the completed object's CRC64NVME is {crc:016x}, not {full_crc64nvme:016x} \
                     as written"
                ),
            )),
            None => Err(self.error(
                key,
                "COMPLETE UPLOAD",
                "the server reports no CRC64NVME for the completed object, so what it holds \
                 cannot be compared with what was written",
            )),
        }
    }

    /// Aborts an upload, so its parts do not stay behind (no error when it is already gone).
    pub fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<()> {
        self.send("ABORT UPLOAD", key, &[404], None, || {
            let mut a =
                AbortMultipartUpload::new(&self.bucket, Some(&self.credentials), key, upload_id);
            a.headers_mut().insert("x-amz-content-sha256", EMPTY_SHA256);
            self.request(a)
        })?;
        Ok(())
    }

    /// The multipart uploads begun under `prefix` and neither completed nor aborted (the
    /// first 1,000).
    pub fn list_multipart_uploads(&self, prefix: &str) -> Result<Vec<PendingUpload>> {
        let reply = self.send("LIST UPLOADS", prefix, &[], None, || {
            let url = rusty_s3::signing::sign(
                &jiff::Timestamp::now(),
                rusty_s3::Method::Get,
                self.bucket.base_url().clone(),
                self.credentials.key(),
                self.credentials.secret(),
                self.credentials.token(),
                self.bucket.region(),
                SIGNATURE_LIFETIME.as_secs(),
                [("prefix", prefix), ("uploads", "")].into_iter(),
                [("x-amz-content-sha256", EMPTY_SHA256)].into_iter(),
            );
            Request {
                method: rusty_s3::Method::Get,
                url,
                headers: vec![("x-amz-content-sha256".into(), EMPTY_SHA256.into())],
                body: None,
            }
        })?;
        let text = String::from_utf8_lossy(&reply.body);
        Ok(xml_blocks(&text, "Upload")
            .into_iter()
            .filter_map(|block| {
                Some(PendingUpload {
                    key: xml_field(block, "Key")?,
                    upload_id: xml_field(block, "UploadId")?,
                })
            })
            .collect())
    }

    /// The action signed, with the headers it signed (which must be sent exactly so).
    fn request<'a, A: S3Action<'a>>(&self, mut action: A) -> Request<'static> {
        let url = action.sign(SIGNATURE_LIFETIME);
        let headers = action
            .headers_mut()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Request {
            method: A::METHOD,
            url,
            headers,
            body: None,
        }
    }

    fn send(
        &self,
        what: &str,
        key: &str,
        accepted: &[u16],
        body: Option<&[u8]>,
        sign: impl FnMut() -> Request<'static>,
    ) -> Result<Reply> {
        self.send_limited(what, key, accepted, body, XML_LIMIT, sign)
    }

    /// Sends the request `sign` makes (signed anew for each attempt), retrying transient
    /// failures; statuses in `accepted` are answers, not errors.
    fn send_limited(
        &self,
        what: &str,
        key: &str,
        accepted: &[u16],
        body: Option<&[u8]>,
        limit: u64,
        mut sign: impl FnMut() -> Request<'static>,
    ) -> Result<Reply> {
        let mut pause = self.retry.first_pause;
        let mut attempt = 1;
        loop {
            let mut request = sign();
            request.body = body;
            match self.attempt(request, accepted, limit) {
                Ok(reply) => return Ok(reply),
                Err(f) if f.transient && attempt < self.retry.attempts => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(8));
                    attempt += 1;
                }
                Err(f) => {
                    let tries = if attempt > 1 {
                        format!(" (after {attempt} attempts)")
                    } else {
                        String::new()
                    };
                    let status = f.status.map(|s| format!("{s} ")).unwrap_or_default();
                    return Err(self.error(key, what, &format!("{status}{}{tries}", f.message)));
                }
            }
        }
    }

    fn attempt(
        &self,
        request: Request<'_>,
        accepted: &[u16],
        limit: u64,
    ) -> std::result::Result<Reply, Failure> {
        let url = request.url.as_str();
        let h = &request.headers;
        let body = request.body.unwrap_or(&[]);
        let result = match request.method {
            rusty_s3::Method::Head => with_headers(self.agent.head(url), h).call(),
            rusty_s3::Method::Get => with_headers(self.agent.get(url), h).call(),
            rusty_s3::Method::Delete => with_headers(self.agent.delete(url), h).call(),
            rusty_s3::Method::Put => with_headers(self.agent.put(url), h).send(body),
            rusty_s3::Method::Post => with_headers(self.agent.post(url), h).send(body),
        };
        let mut response = result.map_err(|e| self.transport_failure(e))?;
        let status = response.status().as_u16();
        let ok = (200..300).contains(&status) || accepted.contains(&status);
        let read_limit = if ok { limit } else { XML_LIMIT };
        let body = response
            .body_mut()
            .with_config()
            .limit(read_limit)
            .read_to_vec()
            .map_err(|e| self.transport_failure(e))?;
        if ok {
            return Ok(Reply {
                status,
                headers: response.headers().clone(),
                body,
            });
        }
        let text = String::from_utf8_lossy(&body);
        let (code, message) = error_fields(&text);
        let transient = matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
            || matches!(
                code.as_str(),
                "SlowDown" | "InternalError" | "RequestTimeout" | "ServiceUnavailable"
            );
        Err(Failure {
            message: self.refusal(status, &code, &message),
            transient,
            status: Some(status),
        })
    }

    /// One line for a server's refusal, with a hint for the usual causes.
    fn refusal(&self, status: u16, code: &str, message: &str) -> String {
        // Garage says `AccessDenied: Forbidden: Invalid signature` where AWS says
        // `SignatureDoesNotMatch`: both mean a wrong secret (or clock).
        let lower = message.to_ascii_lowercase();
        let signature = lower.contains("signature") || lower.contains("access key");
        let hint = match code {
            _ if signature => {
                ": check the access key and secret (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY \
                 or the profile) and the clock"
            }
            "SignatureDoesNotMatch" | "InvalidSignature" | "InvalidAccessKeyId" => {
                ": check the access key and secret (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY \
                 or the profile)"
            }
            "NoSuchBucket" => ": the bucket does not exist",
            "AccessDenied" => ": the key is not allowed to do this in this bucket",
            _ if status == 403 => ": check the access key, secret and the key's rights",
            _ => "",
        };
        let text = match (code.is_empty(), message.is_empty()) {
            (true, true) => "refused".to_string(),
            (false, true) => code.to_string(),
            (true, false) => message.to_string(),
            (false, false) => format!("{code}: {message}"),
        };
        let line = format!("{text}{hint}");
        one_line(&self.secret.redact(&line))
    }

    fn transport_failure(&self, e: ureq::Error) -> Failure {
        let (message, transient) = match &e {
            ureq::Error::Timeout(t) => (format!("timed out ({t})"), true),
            ureq::Error::Io(io) => (format!("connection failed: {io}"), true),
            ureq::Error::ConnectionFailed => ("connection failed".to_string(), true),
            ureq::Error::HostNotFound => ("host not found".to_string(), false),
            ureq::Error::BodyExceedsLimit(n) => (
                format!("the answer is longer than the {n} bytes asked for"),
                false,
            ),
            ureq::Error::Protocol(p) => (format!("HTTP protocol error: {p}"), true),
            other => (other.to_string(), false),
        };
        // A URL in a transport error would carry the signature: cut anything from a query on.
        let message = match message.find("?") {
            Some(i) if message[i..].contains("X-Amz-") => format!("{}…", &message[..i]),
            _ => message,
        };
        Failure {
            message: one_line(&self.secret.redact(&message)),
            transient,
            status: None,
        }
    }

    fn error(&self, key: &str, what: &str, message: &str) -> Error {
        Error::Storage {
            url: self.url_of(key),
            message: format!("{what}: {}", one_line(&self.secret.redact(message))),
        }
    }
}

fn with_headers<B>(
    mut builder: ureq::RequestBuilder<B>,
    headers: &[(String, String)],
) -> ureq::RequestBuilder<B> {
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
}

fn add_put_options<'a>(h: &mut rusty_s3::Map<'a>, options: &'a PutOptions) {
    for (name, value) in &options.metadata {
        h.insert(format!("x-amz-meta-{name}"), value.as_str());
    }
    if let Some(lock) = &options.lock {
        h.insert("x-amz-object-lock-mode", lock.mode.as_str());
        h.insert(
            "x-amz-object-lock-retain-until-date",
            lock.retain_until.as_str(),
        );
    }
}

fn unquote(s: &str) -> String {
    s.trim().trim_matches('"').to_string()
}
