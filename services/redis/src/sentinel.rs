//! Redis Sentinel: which server is the primary now. The command pool asks the Sentinels for
//! every new connection (deadpool-redis); the pub/sub connection and the compactor's sweep ask
//! through [`Sentinels::primary_url`] when they (re)connect.

use crate::error::Error;
use std::time::Duration;

/// The Sentinels watching one primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentinels {
    /// The Sentinels' URLs (`redis://[:password@]host:port`).
    pub sentinels: Vec<String>,
    /// The primary's name at the Sentinels.
    pub master: String,
    /// `redis.url`: scheme, credentials, database and query of the primary (its host is
    /// replaced by the one the Sentinels name).
    pub template: Option<String>,
}

impl Sentinels {
    /// Asks the Sentinels in turn where the primary is; its URL, built on the template.
    pub async fn primary_url(&self, timeout: Duration) -> Result<String, Error> {
        let mut last = String::from("no sentinel configured");
        for sentinel in &self.sentinels {
            match tokio::time::timeout(timeout, self.ask(sentinel)).await {
                Ok(Ok((host, port))) => {
                    return Ok(primary_url(self.template.as_deref(), &host, &port))
                }
                Ok(Err(e)) => last = format!("{}: {e}", crate::config::redact(sentinel)),
                Err(_) => last = format!("{}: no answer", crate::config::redact(sentinel)),
            }
        }
        Err(Error::Connect(format!(
            "no sentinel named the primary {}: {last}",
            self.master
        )))
    }

    async fn ask(&self, sentinel: &str) -> redis::RedisResult<(String, String)> {
        let client = redis::Client::open(sentinel)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let addr: Option<(String, String)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&self.master)
            .query_async(&mut conn)
            .await?;
        addr.ok_or_else(|| {
            redis::RedisError::from(std::io::Error::other(format!(
                "the sentinel does not know {}",
                self.master
            )))
        })
    }
}

/// `template` (scheme, credentials, database, query) with its host and port replaced by
/// `host:port`; `redis://host:port` without a template.
pub fn primary_url(template: Option<&str>, host: &str, port: &str) -> String {
    let host = if host.contains(':') {
        format!("[{host}]") // IPv6
    } else {
        host.to_string()
    };
    let Some(template) = template else {
        return format!("redis://{host}:{port}");
    };
    let (scheme, rest) = template.split_once("://").unwrap_or(("redis", template));
    let (auth, rest) = match rest.rsplit_once('@') {
        Some((auth, rest)) => (format!("{auth}@"), rest),
        None => (String::new(), rest),
    };
    let tail = rest.find(['/', '?', '#']).map_or("", |i| &rest[i..]);
    format!("{scheme}://{auth}{host}:{port}{tail}")
}

#[cfg(test)]
mod tests {
    use super::primary_url;

    #[test]
    fn the_primary_url_keeps_scheme_credentials_and_database_of_the_template() {
        assert_eq!(
            primary_url(None, "10.0.0.5", "6379"),
            "redis://10.0.0.5:6379"
        );
        assert_eq!(
            primary_url(
                Some("rediss://user:pw@ignored:1/2?x=1#insecure"),
                "h",
                "6380"
            ),
            "rediss://user:pw@h:6380/2?x=1#insecure"
        );
        assert_eq!(
            primary_url(Some("redis://:p@w@ignored"), "h", "1"),
            "redis://:p@w@h:1"
        );
        assert_eq!(
            primary_url(Some("redis://x"), "::1", "7"),
            "redis://[::1]:7"
        );
    }
}
