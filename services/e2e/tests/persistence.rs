//! `YPERSISTENCE=DIR`: a single node keeps documents across restarts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    reason = "a panic with a message is a test failure; real processes are polled from plain threads, where std::thread::sleep is right"
)]

use std::path::{Path, PathBuf};
use std::time::Duration;
use yws_e2e::process::{Service, ServiceBuilder};
use yws_e2e::{interop, unique_room};

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("yws-persist-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn gateway(dir: &Path) -> Service {
    ServiceBuilder::gateway()
        .env("YPERSISTENCE", dir.display())
        .spawn()
}

#[test]
fn documents_survive_sigterm_and_restart() {
    let dir = data_dir("term");
    let rooms: Vec<String> = (0..5)
        .map(|i| unique_room(&format!("persist{i}")))
        .collect();
    let mut gw = gateway(&dir);
    let mut expected = Vec::new();
    for room in &rooms {
        interop::write_doc(&gw.ws_url(), room, "first; ");
        expected.push(interop::write_doc(
            &gw.ws_url(),
            room,
            &format!("second in {room}"),
        ));
    }
    gw.terminate();
    assert!(gw
        .wait_exit(Duration::from_secs(15))
        .expect("exits")
        .success());
    let gw = gateway(&dir);
    for (room, text) in rooms.iter().zip(&expected) {
        interop::check_doc(&gw.ws_url(), room, text);
    }
    // And edits continue on top of the stored state.
    let more = interop::write_doc(&gw.ws_url(), &rooms[0], " third");
    assert_eq!(more, format!("{} third", expected[0]));
}

#[test]
fn sigkill_loses_at_most_the_group_commit_window() {
    let dir = data_dir("kill");
    let room = unique_room("killed");
    let mut gw = gateway(&dir);
    let text = interop::write_doc(&gw.ws_url(), &room, "written well before the kill");
    // The group-commit window is at most 100 ms; wait it out, then kill without a goodbye.
    std::thread::sleep(Duration::from_millis(500));
    gw.kill();
    let gw = gateway(&dir);
    interop::check_doc(&gw.ws_url(), &room, &text);
}

#[test]
fn many_concurrent_edits_are_all_stored() {
    let dir = data_dir("many");
    let room = unique_room("busy");
    let mut gw = gateway(&dir);
    interop::expect_pass("converge", &[gw.ws_url()], &["--room", &room]);
    let before = interop::write_doc(&gw.ws_url(), &room, "|end");
    gw.terminate();
    assert!(gw
        .wait_exit(Duration::from_secs(15))
        .expect("exits")
        .success());
    let gw = gateway(&dir);
    interop::check_doc(&gw.ws_url(), &room, &before);
}
