//! The audit trail: two JSON Lines records for every call that changes Atlas (`begin`
//! before Atlas is called, `end` with the outcome before the answer leaves), chained by
//! the SHA-256 of the line before (`prev`) so that an edited, deleted, reordered or
//! inserted line shows ([`verify`]). Owns the record shape and the public API for
//! anything that changes Atlas: the RPC path, and later the gateway's own deletions
//! (caller `lease-sweeper`): [`AuditLog::begin`], then [`Pending::end`].
//!
//! It fails closed: a `begin` that cannot be written is an error and the caller must not
//! call Atlas. An `end` that cannot be written is counted and logged (ERROR, with the
//! object id), never turned into a failure: Atlas already acted. It never records a
//! secret value: a record has no field for one.
mod writer;

pub mod verify;

use std::{path::PathBuf, sync::Arc};

use serde::{Deserialize, Serialize};

use crate::telemetry::metrics as m;
pub use writer::OpenError;

/// Where the audit trail goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum AuditTarget {
    /// Standard output (`-`): flushed, not synced; a restart starts a new chain.
    Stdout,
    /// A file: appended, `fdatasync`ed per batch; a restart continues its chain.
    File(PathBuf),
}

impl From<String> for AuditTarget {
    fn from(s: String) -> Self {
        if s == "-" {
            AuditTarget::Stdout
        } else {
            AuditTarget::File(s.into())
        }
    }
}

impl From<AuditTarget> for String {
    fn from(t: AuditTarget) -> Self {
        match t {
            AuditTarget::Stdout => "-".into(),
            AuditTarget::File(p) => p.display().to_string(),
        }
    }
}

/// Who asked for what: the fields `begin` and `end` share.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Entry {
    /// The caller's name (`anonymous`, `lease-sweeper`, ...).
    pub caller: String,
    /// The caller's address (empty for the gateway itself).
    pub peer: String,
    /// The profile used.
    pub profile: String,
    /// The method name (`CreateApiKey`).
    pub rpc: &'static str,
    /// The org acted on.
    pub org_id: String,
    /// The caller's idempotency key (empty when none).
    pub request_id: String,
    /// The id the gateway returns for the call (`x-request-id`).
    pub gateway_request_id: String,
    /// The trace id (empty without a trace).
    pub trace_id: String,
}

/// The ids of the object a call created or deleted; never its secret.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ObjectIds {
    /// API key id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_key_id: String,
    /// API key public key.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub public_key: String,
    /// Service account client id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_id: String,
    /// Service account secret id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub secret_id: String,
    /// When a leased object expires (RFC 3339).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub expire_time: String,
}

/// How a call ended.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Outcome {
    /// The gRPC code's canonical name (`OK`, `INVALID_ARGUMENT`).
    pub code: &'static str,
    /// `ErrorInfo.reason` (empty on success).
    pub reason: String,
    /// Atlas's request id, when Atlas answered with one.
    pub atlas_request_id: String,
    /// What was created or deleted.
    #[serde(flatten)]
    pub object: ObjectIds,
}

/// One record's body (what the writer puts between `event` and `prev`).
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Body {
    Open {
        version: &'static str,
    },
    Begin(Entry),
    End {
        #[serde(flatten)]
        entry: Entry,
        #[serde(flatten)]
        outcome: Outcome,
    },
}

/// The begin record could not be written: do not call Atlas.
#[derive(Debug, thiserror::Error)]
#[error("the audit begin record could not be written: {0}")]
pub struct AuditUnavailable(std::io::Error);

/// An open audit trail (cheap to share: one writer thread behind a channel).
#[derive(Debug)]
pub struct AuditLog {
    writer: writer::Handle,
}

impl AuditLog {
    /// Opens `target`: a new or empty file gets its `open` line (written and synced),
    /// an existing one is continued from its last line. Fails when either cannot be
    /// done (the gateway must then refuse to start).
    pub fn open(target: &AuditTarget) -> Result<Arc<Self>, OpenError> {
        Ok(Arc::new(Self {
            writer: writer::Handle::open(target)?,
        }))
    }

    /// Writes (and syncs) the `begin` record of `entry`; only then may Atlas be called.
    pub async fn begin(self: &Arc<Self>, entry: Entry) -> Result<Pending, AuditUnavailable> {
        let line = Body::Begin(entry);
        match self.writer.write("begin", line).await {
            Ok(Body::Begin(entry)) => Ok(Pending {
                log: Arc::clone(self),
                entry: Some(entry),
            }),
            Ok(_) => unreachable!("the writer gives back the body it was given"),
            Err(e) => {
                m::audit_error("begin");
                tracing::error!(error = %e, "audit begin record not written: call refused, Atlas not called");
                Err(AuditUnavailable(e))
            }
        }
    }
}

/// A call whose `begin` is written and whose `end` is due. Dropped without
/// [`Pending::end`] (the caller hung up), it writes `end` with code `CANCELLED`.
#[derive(Debug)]
pub struct Pending {
    log: Arc<AuditLog>,
    entry: Option<Entry>,
}

impl Pending {
    /// Writes the `end` record. A failure is counted and logged, never returned: what
    /// Atlas did stands.
    pub async fn end(mut self, outcome: Outcome) {
        let entry = self.entry.take().expect("end runs once");
        let ids = outcome.object.clone();
        if let Err(e) = self
            .log
            .writer
            .write("end", Body::End { entry, outcome })
            .await
        {
            m::audit_error("end");
            tracing::error!(error = %e, api_key_id = ids.api_key_id, public_key = ids.public_key,
                client_id = ids.client_id, secret_id = ids.secret_id,
                "audit end record not written: the call's result was returned; record this object by hand");
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            let outcome = Outcome {
                code: "CANCELLED",
                ..Outcome::default()
            };
            self.log.writer.send("end", Body::End { entry, outcome });
        }
    }
}

#[cfg(test)]
mod tests;
