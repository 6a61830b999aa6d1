//! Compactors with storage: object first, then Redis, then the trim; superseded objects
//! deleted; a crash at each step loses nothing and is finished by another replica.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;
use yws_e2e::docs::{self, same_state, Author};
use yws_e2e::redis::RedisServer;
use yws_e2e::redis_keys::{now_ms, RedisKeys};
use yws_e2e::unique_room;

use crate::support::{compactor, snap_field, wait_recorded, Store, PREFIX, WAIT};

/// 300 entries written straight into the room's log, queued for compaction now.
fn write_log(direct: &mut RedisKeys, room: &str, author: &Author, n: usize) {
    for u in author.typing(n) {
        direct.append(room, &u);
    }
    direct.schedule(room, now_ms());
}

fn snapshot_goes_to_storage_first(store: &Store) {
    let redis = RedisServer::start();
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let room = unique_room("stored");
    let author = Author::new(601);
    write_log(&mut direct, &room, &author, 300);
    let _compactor = compactor(&redis, store).spawn();

    let first = wait_recorded(&mut direct, &room, None);
    assert_eq!(
        store.snapshots(&room),
        [first],
        "exactly the recorded object"
    );
    let object = store.snapshot(&room, &first);
    same_state(&docs::doc_from(&object.state), &author.doc).expect("the stored snapshot");
    let epoch: u64 = snap_field(&mut direct, &room, "epoch")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        (first.epoch, epoch),
        (1, 1),
        "object and Redis name one epoch"
    );
    let upto = snap_field(&mut direct, &room, "upto").unwrap();
    assert_eq!(
        upto,
        first.covered.to_string(),
        "the object covers what Redis says"
    );

    // More edits: a new object, recorded, and the superseded one deleted.
    write_log(&mut direct, &room, &author, 50);
    let first_name = first.file_name();
    let second = wait_recorded(&mut direct, &room, Some(&first_name));
    assert_eq!(second.epoch, 2);
    assert!(second.covered > first.covered);
    let only_current = direct.wait_until(WAIT, |_| store.snapshots(&room) == [second]);
    assert!(
        only_current,
        "superseded object deleted: {:?}",
        store.snapshots(&room)
    );
    let object = store.snapshot(&room, &second);
    same_state(&docs::doc_from(&object.state), &author.doc).expect("the second snapshot");
}

#[test]
fn snapshot_goes_to_s3_first_then_redis_then_trim() {
    snapshot_goes_to_storage_first(&Store::s3());
}

#[test]
fn snapshot_goes_to_a_directory_first_then_redis_then_trim() {
    snapshot_goes_to_storage_first(&Store::dir("first"));
}

/// Kills a compactor at `point` in a room of 300 entries read in pages of 50, checks what the
/// crash left (in Redis and in storage) loses nothing, and lets a second compactor finish.
fn crash_at(store: &Store, point: &str) {
    let redis = RedisServer::start();
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let room = unique_room(point);
    let author = Author::new(602);
    write_log(&mut direct, &room, &author, 300);
    let paged = |b: yws_e2e::process::ServiceBuilder| b.env("YWS__COMPACTOR__PAGE_ENTRIES", 50);

    let mut doomed = paged(compactor(&redis, store))
        .env("YWS_COMPACTOR_FAULT", point)
        .spawn();
    let status = doomed
        .wait_exit(WAIT)
        .expect("the compactor dies at the fault point");
    assert_eq!(status.signal(), Some(6), "abort(): {status:?}");

    let stored = direct.stored(&room);
    same_state(&stored.doc(), &author.doc).expect("Redis still holds everything");
    let recorded = snap_field(&mut direct, &room, "obj");
    let objects = store.snapshots(&room);
    match point {
        "before_write" => {
            assert!(objects.is_empty(), "nothing stored yet: {objects:?}");
            assert_eq!(recorded, None);
        }
        "after_put" => {
            assert_eq!(objects.len(), 1, "the object is stored: {objects:?}");
            assert_eq!(recorded, None, "but Redis does not name it");
            assert_eq!(stored.snapshot.doc, None, "and Redis has no snapshot");
        }
        "after_write" => {
            assert_eq!(objects.len(), 1, "{objects:?}");
            assert_eq!(recorded, Some(objects[0].file_name()), "recorded");
            assert_eq!(direct.log_len(&room), 300, "not trimmed yet");
        }
        other => panic!("unknown point {other}"),
    }

    // Another replica takes over once the dead one's lease expires, and finishes.
    let _rescuer = paged(compactor(&redis, store)).spawn();
    let current = wait_recorded(&mut direct, &room, None);
    let finished = direct.wait_until(WAIT, |s| s.meta(&room, "claim").is_none());
    assert!(finished, "the dead replica's claim released");
    assert_eq!(
        store.snapshots(&room),
        [current],
        "one object, the recorded one"
    );
    let object = store.snapshot(&room, &current);
    same_state(&docs::doc_from(&object.state), &author.doc).expect("stored after the rescue");
    let snap = direct.snapshot(&room);
    same_state(
        &docs::doc_from(snap.doc.as_deref().expect("doc")),
        &author.doc,
    )
    .expect("Redis after the rescue");
    assert!(doomed.wait_for_log("aborting at fault point", Duration::from_secs(5)));
}

#[test]
fn crash_before_the_object_is_written_loses_nothing() {
    crash_at(&Store::dir("before-write"), "before_write");
}

#[test]
fn crash_after_the_object_before_redis_records_it_loses_nothing() {
    crash_at(&Store::s3(), "after_put");
}

#[test]
fn crash_after_redis_recorded_the_object_before_the_trim_loses_nothing() {
    crash_at(&Store::dir("after-write"), "after_write");
}

/// A replica stalled between its put and its record past the end of its lease: another
/// replica compacts meanwhile, and the stalled one, when it wakes, records nothing — its
/// older object never becomes current, and it is deleted as superseded.
#[test]
fn a_replica_that_lost_its_lease_never_makes_its_object_current() {
    let store = Store::dir("lease-lost");
    let redis = RedisServer::start();
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let room = unique_room("lease-lost");
    let author = Author::new(603);
    write_log(&mut direct, &room, &author, 100);
    let short_lease = |b: yws_e2e::process::ServiceBuilder| {
        b.env("YWS__COMPACTOR__LEASE_MS", 2000)
            .env("YWS__REDIS__COMMAND_TIMEOUT_MS", 500)
    };
    let stalled = short_lease(compactor(&redis, &store))
        .env("YWS_COMPACTOR_PAUSE", "after_put:6000")
        .spawn();
    assert!(stalled.wait_for_log("pausing at fault point", WAIT));
    let orphan = store.snapshots(&room);
    assert_eq!(orphan.len(), 1, "the stalled replica's object: {orphan:?}");
    assert_eq!(snap_field(&mut direct, &room, "obj"), None, "not recorded");

    // More edits, and a healthy replica that takes over once the lease expired.
    write_log(&mut direct, &room, &author, 20);
    let _healthy = short_lease(compactor(&redis, &store)).spawn();
    let current = wait_recorded(&mut direct, &room, None);
    assert!(
        current.covered > orphan[0].covered,
        "the healthy replica covers more"
    );

    let lost = direct.wait_until(WAIT, |_| {
        yws_e2e::http::metric(
            stalled.addr,
            "yws_compactor_compactions_total{result=\"lease_lost\"}",
        ) == 1.0
    });
    assert!(
        lost,
        "the stalled replica's record was refused (lease lost)"
    );
    assert_eq!(
        snap_field(&mut direct, &room, "obj"),
        Some(current.file_name()),
        "the newer object stays current"
    );
    assert_eq!(
        store.snapshots(&room),
        [current],
        "the older object was deleted"
    );
    let object = store.snapshot(&room, &current);
    same_state(&docs::doc_from(&object.state), &author.doc).expect("nothing lost");
}

/// A deployment that turns storage on: snapshots only Redis holds are found by the
/// compactor's sweep and stored, though nothing new was written to their rooms.
#[test]
fn turning_storage_on_moves_snapshots_only_redis_holds() {
    let store = Store::dir("migrate");
    let redis = RedisServer::start();
    let mut direct = RedisKeys::connect(redis.port, PREFIX);
    let rooms: Vec<String> = (0..3)
        .map(|i| unique_room(&format!("migrate{i}")))
        .collect();
    let authors: Vec<Author> = (0..3).map(|i| Author::new(610 + i)).collect();
    for (room, author) in rooms.iter().zip(&authors) {
        write_log(&mut direct, room, author, 40);
    }
    let mut plain = yws_e2e::process::ServiceBuilder::compactor()
        .env("REDIS_URL", redis.url())
        .env("YWS__COMPACTOR__POLL_INTERVAL_MS", 100)
        .env("YWS__COMPACTOR__CLEANUP_AFTER_MS", 600_000)
        .spawn();
    for room in &rooms {
        let compacted = direct.wait_until(WAIT, |s| {
            s.snapshot(room).doc.is_some() && s.log_len(room) == 0
        });
        assert!(compacted, "{room} compacted in Redis");
        assert_eq!(snap_field(&mut direct, room, "obj"), None);
    }
    plain.kill();
    assert!(store.snapshots(&rooms[0]).is_empty());

    let migrating = compactor(&redis, &store)
        .env("YWS__COMPACTOR__SWEEP_INTERVAL_MS", 500)
        .spawn();
    for (room, author) in rooms.iter().zip(&authors) {
        let current = wait_recorded(&mut direct, room, None);
        assert_eq!(current.epoch, 2, "the Redis snapshot's epoch + 1");
        let object = store.snapshot(room, &current);
        same_state(&docs::doc_from(&object.state), &author.doc).expect("the migrated snapshot");
    }
    assert_eq!(
        yws_e2e::http::metric(migrating.addr, "yws_compactor_snapshots_migrated_total"),
        3.0
    );
}
