//! [`StorageMetrics`]: what object storage reports to Prometheus. Labels are bounded: the
//! operation ([`Op`]) and an error kind ([`ErrorKind`]) — never a room or an object name.

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};
use std::fmt;

/// A storage operation, as labelled in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Writing an object (single request or a whole multipart upload).
    Put,
    /// Reading an object.
    Get,
    /// Listing objects under a prefix (all pages).
    List,
    /// Deleting objects.
    Delete,
    /// Reading an object's metadata.
    Head,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 5] = [Op::Put, Op::Get, Op::List, Op::Delete, Op::Head];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::List => "list",
            Op::Delete => "delete",
            Op::Head => "head",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an operation failed, as labelled in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The call did not finish before its deadline (or a request timed out).
    Timeout,
    /// The store could not be reached (connection refused, DNS, TLS).
    Unreachable,
    /// Credentials were missing or refused (401, 403).
    Denied,
    /// Anything else (a server error after the retries, a refused request, an unexpected
    /// answer).
    Other,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 4] = [
        ErrorKind::Timeout,
        ErrorKind::Unreachable,
        ErrorKind::Denied,
        ErrorKind::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Denied => "denied",
            ErrorKind::Other => "other",
        }
    }
}

/// Metrics of object storage, registered on the registry built in `main`.
#[derive(Debug, Clone)]
pub struct StorageMetrics {
    /// Duration of operations by `op`, including retries; failed ones too.
    pub operation_seconds: HistogramVec,
    /// Failed operations by `op` and `kind` (after retries). "Not found" and write-once
    /// refusals are answers, not errors.
    pub errors: IntCounterVec,
    /// Bytes written (object bodies).
    pub written_bytes: IntCounter,
    /// Bytes read (object bodies).
    pub read_bytes: IntCounter,
    /// Objects that did not decode (bad checksum, truncated, misplaced, unknown version).
    pub corrupt_objects: IntCounter,
}

impl StorageMetrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self::unregistered()?;
        registry.register(Box::new(m.operation_seconds.clone()))?;
        registry.register(Box::new(m.errors.clone()))?;
        registry.register(Box::new(m.written_bytes.clone()))?;
        registry.register(Box::new(m.read_bytes.clone()))?;
        registry.register(Box::new(m.corrupt_objects.clone()))?;
        Ok(m)
    }

    /// Metrics registered nowhere (tests, tools).
    pub fn unregistered() -> Result<Self, prometheus::Error> {
        let seconds = vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ];
        let m = StorageMetrics {
            operation_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "yws_storage_operation_duration_seconds",
                    "Duration of object storage operations by op, retries included",
                )
                .buckets(seconds),
                &["op"],
            )?,
            errors: IntCounterVec::new(
                Opts::new(
                    "yws_storage_errors_total",
                    "Failed object storage operations by op and kind, after retries",
                ),
                &["op", "kind"],
            )?,
            written_bytes: IntCounter::new(
                "yws_storage_written_bytes_total",
                "Bytes of objects written to storage",
            )?,
            read_bytes: IntCounter::new(
                "yws_storage_read_bytes_total",
                "Bytes of objects read from storage",
            )?,
            corrupt_objects: IntCounter::new(
                "yws_storage_corrupt_objects_total",
                "Stored objects that did not decode (checksum, truncation, version, name)",
            )?,
        };
        // Every series exists from the start, so rates and alerts see zeros, not gaps.
        for op in Op::ALL {
            m.operation_seconds.with_label_values(&[op.as_str()]);
            for kind in ErrorKind::ALL {
                m.errors.with_label_values(&[op.as_str(), kind.as_str()]);
            }
        }
        Ok(m)
    }

    /// Counts a failed operation.
    pub(crate) fn error(&self, op: Op, kind: ErrorKind) {
        self.errors
            .with_label_values(&[op.as_str(), kind.as_str()])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_bounded_series() {
        let registry = Registry::new();
        let m = StorageMetrics::new(&registry).unwrap();
        m.error(Op::Get, ErrorKind::Timeout);
        let families = registry.gather();
        let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
        for name in [
            "yws_storage_operation_duration_seconds",
            "yws_storage_errors_total",
            "yws_storage_written_bytes_total",
            "yws_storage_read_bytes_total",
            "yws_storage_corrupt_objects_total",
        ] {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        let errors = families
            .iter()
            .find(|f| f.name() == "yws_storage_errors_total")
            .unwrap();
        assert_eq!(
            errors.get_metric().len(),
            Op::ALL.len() * ErrorKind::ALL.len()
        );
        // A second registration on the same registry is refused, not duplicated.
        assert!(StorageMetrics::new(&registry).is_err());
    }
}
