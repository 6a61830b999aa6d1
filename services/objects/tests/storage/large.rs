//! Large objects go by multipart upload (8 MiB parts by default) and read back whole.

use crate::ops::on_both_backends;
use crate::{noise, snapshot, Backend};
use object_store::ObjectStoreExt;
use yws_objects::{PutOutcome, StorageError};

on_both_backends!(a_20_mib_snapshot_round_trips_by_multipart);

async fn a_20_mib_snapshot_round_trips_by_multipart(backend: Backend) {
    let storage = backend.storage("big");
    let state = noise(20 * 1024 * 1024, 7);
    let s = snapshot("large doc", 4, (1_733_400_000_000, 0), &state);
    let PutOutcome::Written { bytes } = storage.put_snapshot(&s).await.unwrap() else {
        panic!("not written");
    };
    assert!(bytes > state.len() as u64);
    let path = storage.layout().snapshot("large doc", &s.id()).unwrap();
    let meta = storage.raw_store().head(&path).await.unwrap();
    assert_eq!(meta.size, bytes);
    if let Backend::S3(_) = backend {
        // S3 marks multipart objects: the ETag of a 3-part upload ends in "-3".
        let etag = meta.e_tag.unwrap_or_default();
        assert!(etag.trim_matches('"').ends_with("-3"), "ETag {etag}");
    }
    let back = storage.get_snapshot("large doc", &s.id()).await.unwrap();
    assert!(
        back.state == s.state,
        "20 MiB state differs after the round trip"
    );
    assert_eq!(back, s);

    // Write-once holds for multipart objects too.
    assert_eq!(
        storage.put_snapshot(&s).await.unwrap(),
        PutOutcome::AlreadyPresent
    );
    let mut other = s.clone();
    other.state = noise(20 * 1024 * 1024, 8).into();
    assert!(matches!(
        storage.put_snapshot(&other).await,
        Err(StorageError::Conflict { .. })
    ));
    assert!(storage.get_snapshot("large doc", &s.id()).await.unwrap() == s);
    assert_eq!(
        storage.metrics().written_bytes.get(),
        bytes,
        "the refused put wrote nothing"
    );
}

/// Small objects are written in one conditional request: of concurrent writers of the same
/// name with different content, exactly one succeeds and the stored object is the winner's.
/// (On S3 this relies on the server's atomic `If-None-Match: *`; s3s-fs checks it before
/// writing, not atomically, so this runs against a directory only.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_of_one_name_leave_one_object_in_a_directory() {
    let backend = Backend::dir();
    let storage = backend.storage("race");
    for round in 0..20u64 {
        let writers: Vec<_> = (0..4u8)
            .map(|w| {
                let storage = storage.clone();
                let s = snapshot("contended", round, (round, 0), &[w; 64]);
                tokio::spawn(async move { (w, storage.put_snapshot(&s).await) })
            })
            .collect();
        let mut winners = Vec::new();
        for writer in writers {
            let (w, result) = writer.await.unwrap();
            match result {
                Ok(PutOutcome::Written { .. }) => winners.push(w),
                Err(StorageError::Conflict { .. }) => {}
                other => panic!("writer {w}: {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let stored = storage.latest_snapshot("contended").await.unwrap().unwrap();
        assert_eq!(&stored.state[..], &[winners[0]; 64][..]);
    }
}
