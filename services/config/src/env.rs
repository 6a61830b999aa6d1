//! The environment names the reference server (and yws before `YWS__`) understands, one table
//! per config section, each name listed once. A binary loads the tables of the sections it has:
//! the gateway and the compactor share [`REDIS`] and [`LOG`].

/// How an environment value becomes a config value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvKind {
    /// Taken as is: numbers are parsed by the target type, lists split by it (see
    /// [`comma_list`](crate::comma_list)).
    Plain,
    /// A boolean where `false` and `0` mean false and anything else true (the reference's `GC`).
    Flag,
}

/// One environment name and the key it sets within its section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVar {
    /// The environment variable, e.g. `PORT`.
    pub name: &'static str,
    /// The key within the section, e.g. `port`.
    pub key: &'static str,
    /// How its value is read.
    pub kind: EnvKind,
}

impl EnvVar {
    /// A value taken as is.
    pub const fn plain(name: &'static str, key: &'static str) -> Self {
        EnvVar {
            name,
            key,
            kind: EnvKind::Plain,
        }
    }

    /// A flag that is true unless `false` or `0`.
    pub const fn flag(name: &'static str, key: &'static str) -> Self {
        EnvVar {
            name,
            key,
            kind: EnvKind::Flag,
        }
    }
}

/// The environment names of one config section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvTable {
    /// The section, e.g. `server`.
    pub section: &'static str,
    /// Its names.
    pub vars: &'static [EnvVar],
}

impl EnvTable {
    /// Every `(variable, dotted key)` of the table, e.g. `("PORT", "server.port")`.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, String)> + '_ {
        self.vars
            .iter()
            .map(|v| (v.name, format!("{}.{}", self.section, v.key)))
    }
}

/// `[server]` of the gateway: the reference server's `HOST` and `PORT`.
pub const SERVER: EnvTable = EnvTable {
    section: "server",
    vars: &[EnvVar::plain("HOST", "host"), EnvVar::plain("PORT", "port")],
};

/// `[rooms]` of the gateway: the reference server's `GC`.
pub const ROOMS: EnvTable = EnvTable {
    section: "rooms",
    vars: &[EnvVar::flag("GC", "gc")],
};

/// `[compactor]`: `GC`, as for the gateway's rooms.
pub const COMPACTOR: EnvTable = EnvTable {
    section: "compactor",
    vars: &[EnvVar::flag("GC", "gc")],
};

/// `[callback]` of the gateway: the reference server's `CALLBACK_*` (and `CALLBACK_SECRET`).
pub const CALLBACK: EnvTable = EnvTable {
    section: "callback",
    vars: &[
        EnvVar::plain("CALLBACK_URL", "url"),
        EnvVar::plain("CALLBACK_DEBOUNCE_WAIT", "debounce_wait_ms"),
        EnvVar::plain("CALLBACK_DEBOUNCE_MAXWAIT", "debounce_maxwait_ms"),
        EnvVar::plain("CALLBACK_TIMEOUT", "timeout_ms"),
        EnvVar::plain("CALLBACK_OBJECTS", "objects"),
        EnvVar::plain("CALLBACK_SECRET", "secret"),
    ],
};

/// `[persistence]` of the gateway: the reference server's `YPERSISTENCE`.
pub const PERSISTENCE: EnvTable = EnvTable {
    section: "persistence",
    vars: &[EnvVar::plain("YPERSISTENCE", "dir")],
};

/// `[auth]` of the gateway. List keys take a comma-separated string.
pub const AUTH: EnvTable = EnvTable {
    section: "auth",
    vars: &[
        EnvVar::plain("AUTH_JWT_SECRET", "jwt_secret"),
        EnvVar::plain("AUTH_JWT_PUBLIC_KEY_FILE", "jwt_public_key_file"),
        EnvVar::plain("AUTH_JWT_ALGORITHM", "jwt_algorithm"),
        EnvVar::plain("AUTH_JWT_ISSUER", "jwt_issuer"),
        EnvVar::plain("AUTH_JWT_AUDIENCE", "jwt_audience"),
        EnvVar::plain("AUTH_JWT_REQUIRE_EXP", "jwt_require_exp"),
        EnvVar::plain("AUTH_JWT_LEEWAY_SECS", "leeway_secs"),
        EnvVar::plain("AUTH_TOKEN_QUERY_PARAM", "token_query_param"),
        EnvVar::plain("AUTH_TOKEN_COOKIE", "token_cookie"),
        EnvVar::plain("AUTH_URL", "webhook_url"),
        EnvVar::plain("AUTH_WEBHOOK_TIMEOUT_MS", "webhook_timeout_ms"),
        EnvVar::plain("AUTH_WEBHOOK_FORWARD_HEADERS", "webhook_forward_headers"),
        EnvVar::plain("AUTH_WEBHOOK_FORWARD_COOKIES", "webhook_forward_cookies"),
        EnvVar::plain("AUTH_WEBHOOK_CACHE_TTL_MS", "webhook_cache_ttl_ms"),
        EnvVar::plain(
            "AUTH_WEBHOOK_CACHE_MAX_ENTRIES",
            "webhook_cache_max_entries",
        ),
        EnvVar::plain("AUTH_WEBHOOK_MAX_CONCURRENCY", "webhook_max_concurrency"),
        EnvVar::plain("AUTH_ALLOWED_ORIGINS", "allowed_origins"),
    ],
};

/// `[storage]`, object storage for documents, shared by the gateway and the compactor.
pub const STORAGE: EnvTable = EnvTable {
    section: "storage",
    vars: &[EnvVar::plain("YWS_STORAGE_URL", "url")],
};

/// `[redis]`, shared by the gateway and the compactor. `REDIS_CLUSTER_NODES` and
/// `REDIS_SENTINELS` are comma lists.
pub const REDIS: EnvTable = EnvTable {
    section: "redis",
    vars: &[
        EnvVar::plain("REDIS_URL", "url"),
        EnvVar::plain("REDIS_CLUSTER_NODES", "cluster_nodes"),
        EnvVar::plain("REDIS_SENTINELS", "sentinels"),
        EnvVar::plain("REDIS_SENTINEL_MASTER", "sentinel_master"),
        EnvVar::plain("REDIS_SENTINEL_PASSWORD", "sentinel_password"),
        EnvVar::plain("YWS_REDIS_PREFIX", "prefix"),
    ],
};

/// `[admin]` of the gateway: the admin console's token.
pub const ADMIN: EnvTable = EnvTable {
    section: "admin",
    vars: &[EnvVar::plain("YWS_ADMIN_TOKEN", "token")],
};

/// `[log]`, shared by the gateway and the compactor.
pub const LOG: EnvTable = EnvTable {
    section: "log",
    vars: &[
        EnvVar::plain("LOG_FORMAT", "format"),
        EnvVar::plain("LOG_LEVEL", "level"),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_name_dotted_keys() {
        let entries: Vec<_> = SERVER.entries().collect();
        assert_eq!(
            entries,
            [
                ("HOST", "server.host".to_string()),
                ("PORT", "server.port".to_string())
            ]
        );
    }
}
