//! A string that must never reach a log: the workspace's one [`Secret`] type, from
//! `yws-config` (`Debug` prints `"<redacted>"`, no `Display`, no `Serialize`).

pub use yws_config::Secret;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        let secret = Secret::new("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2");
        assert_eq!(Secret::from("x"), Secret::from(String::from("x")));
    }
}
