use std::path::PathBuf;

use thiserror::Error;

/// Why the auth configuration cannot be used. Returned at startup by [`AuthConfig::validate`]
/// (settings) and [`Authorizer::new`] (settings, then the key file: [`AuthError::KeyFile`],
/// [`AuthError::Key`], and a `jwt_algorithm` that does not match the key); the binary prints
/// it and exits with status 64.
///
/// Messages name the config key (under the `auth` section) and never contain secret values.
///
/// [`AuthConfig::validate`]: crate::AuthConfig::validate
/// [`Authorizer::new`]: crate::Authorizer::new
#[derive(Debug, Error)]
pub enum AuthError {
    /// A setting, or a combination of settings, is invalid.
    #[error("invalid auth config `auth.{key}`: {reason}")]
    Invalid {
        /// The offending key under the `auth` section.
        key: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The JWT public key file could not be read.
    #[error("cannot read `auth.jwt_public_key_file` {}: {source}", path.display())]
    KeyFile {
        /// The configured path.
        path: PathBuf,
        /// The underlying IO error.
        #[source]
        source: std::io::Error,
    },
    /// The JWT public key file was read but does not hold a usable public key.
    #[error("unusable key in `auth.jwt_public_key_file` {}: {reason}", path.display())]
    Key {
        /// The configured path.
        path: PathBuf,
        /// What is wrong with the key.
        reason: String,
    },
}

impl AuthError {
    pub(crate) fn invalid(key: &'static str, reason: impl Into<String>) -> Self {
        AuthError::Invalid {
            key,
            reason: reason.into(),
        }
    }
}
