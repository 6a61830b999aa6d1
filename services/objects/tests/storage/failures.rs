//! An unreachable, failing or silent server gives a timely error after a bounded number of
//! attempts — never a hang — and a server that comes back serves what it had.

use crate::{snapshot, test_config, Backend};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use yws_objects::testing::S3Server;
use yws_objects::{ObjectStorage, StorageConfig, StorageEnv, StorageError, StorageMetrics};

/// A liveness guard, not a performance bound: the calls must end on their own well before.
const GUARD: Duration = Duration::from_secs(60);

fn s3_at(endpoint: &str, edit: impl FnOnce(&mut StorageConfig)) -> ObjectStorage {
    let env = StorageEnv::from_vars([
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "k"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
        ("AWS_REGION", "us-east-1"),
    ]);
    let mut config = test_config("s3://bucket/p".into());
    config.max_retries = 2;
    config.retry_timeout_ms = 5_000;
    config.backoff_initial_ms = 10;
    config.backoff_max_ms = 50;
    edit(&mut config);
    config.validate(&env).unwrap();
    ObjectStorage::open(&config, &env, StorageMetrics::unregistered().unwrap()).unwrap()
}

fn errors(storage: &ObjectStorage, op: &str, kind: &str) -> u64 {
    storage
        .metrics()
        .errors
        .with_label_values(&[op, kind])
        .get()
}

/// A loopback port with nothing listening (bound, then released).
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn an_unreachable_server_fails_fast_after_bounded_retries() {
    let storage = s3_at(&format!("http://127.0.0.1:{}", closed_port().await), |_| {});
    let s = snapshot("r", 1, (1, 0), b"x");
    let put = tokio::time::timeout(GUARD, storage.put_snapshot(&s))
        .await
        .expect("put ends on its own");
    let err = put.unwrap_err();
    assert!(matches!(err, StorageError::Backend { .. }), "{err}");
    assert!(err.is_transient());
    assert_eq!(errors(&storage, "put", "unreachable"), 1, "{err}");
    let get = tokio::time::timeout(GUARD, storage.latest_snapshot("r"))
        .await
        .expect("list ends on its own");
    assert!(get.is_err());
    assert_eq!(errors(&storage, "list", "unreachable"), 1);
    let probe = tokio::time::timeout(GUARD, storage.probe()).await.unwrap();
    assert!(probe.is_err());
    assert_eq!(errors(&storage, "head", "unreachable"), 1);
}

/// Answers every request with `status` (or, when `None`, accepts and never answers);
/// counts requests.
async fn fake_server(
    status: Option<&'static str>,
) -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    let task = tokio::spawn(async move {
        // Connection tasks end with this task (a JoinSet aborts them when dropped).
        let mut held = tokio::task::JoinSet::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            held.spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut seen = Vec::new();
                // One request per connection: read its head (HEAD and GET have no body).
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                match status {
                    Some(status) => {
                        let response = format!(
                            "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                        let _ = socket.write_all(response.as_bytes()).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            });
        }
    });
    (endpoint, requests, task)
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let (endpoint, requests, server) = fake_server(Some("503 Service Unavailable")).await;
    let storage = s3_at(&endpoint, |c| c.max_retries = 3);
    let probe = tokio::time::timeout(GUARD, storage.probe()).await.unwrap();
    assert!(probe.is_err());
    assert_eq!(
        requests.load(Ordering::SeqCst),
        4,
        "one attempt and 3 retries"
    );
    assert_eq!(errors(&storage, "head", "other"), 1);

    requests.store(0, Ordering::SeqCst);
    let storage = s3_at(&endpoint, |c| c.max_retries = 0);
    let id = snapshot("r", 1, (1, 0), b"").id();
    let get = tokio::time::timeout(GUARD, storage.get_snapshot("r", &id))
        .await
        .unwrap();
    assert!(matches!(get, Err(StorageError::Backend { .. })), "{get:?}");
    assert_eq!(
        requests.load(Ordering::SeqCst),
        1,
        "no retries when none are configured"
    );
    server.abort();
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let (endpoint, requests, server) = fake_server(None).await;
    let storage = s3_at(&endpoint, |c| {
        c.request_timeout_ms = 300;
        c.max_retries = 1;
    });
    let err = tokio::time::timeout(GUARD, storage.probe())
        .await
        .expect("the request timeout ends it")
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(errors(&storage, "head", "timeout"), 1, "{err}");
    assert_eq!(
        requests.load(Ordering::SeqCst),
        2,
        "one attempt and 1 retry"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_comes_back_serves_what_it_had() {
    let backend = Backend::s3();
    let storage = backend.storage("p");
    let s = snapshot("survivor", 1, (5, 0), b"kept");
    storage.put_snapshot(&s).await.unwrap();
    let Backend::S3(mut server) = backend else {
        unreachable!()
    };
    server.stop();
    let down = tokio::time::timeout(GUARD, storage.get_snapshot("survivor", &s.id()))
        .await
        .unwrap();
    assert!(down.is_err_and(|e| e.is_transient()));
    server.restart();
    assert_eq!(storage.get_snapshot("survivor", &s.id()).await.unwrap(), s);
    // The same client keeps working; nothing needs reopening.
    storage
        .put_snapshot(&snapshot("survivor", 2, (6, 0), b"after"))
        .await
        .unwrap();
    assert_eq!(
        storage
            .latest_snapshot("survivor")
            .await
            .unwrap()
            .unwrap()
            .epoch,
        2
    );
    drop::<S3Server>(server);
}
