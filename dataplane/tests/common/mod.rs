//! Helpers shared by the runtime tests: a private network namespace per test thread, command
//! runner, and the channels a worker is started with.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use xdpsec_dataplane::handoff::Handoff;
use xdpsec_dataplane::sad::SaCommand;
use xdpsec_dataplane::worker::{ControlDatagram, Links, Query, WorkerEvent, WorkerStats};

/// Move this thread (and the threads and processes it starts) into a new network namespace
/// with loopback up. Fails loudly: the tests need root.
pub fn private_netns() {
    // SAFETY: unshare has no memory preconditions; it affects only the calling thread.
    let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        r,
        0,
        "unshare(CLONE_NEWNET) failed (needs root): {}",
        std::io::Error::last_os_error()
    );
    run(&["ip", "link", "set", "lo", "up"]);
}

/// Run a command (in this thread's namespace); panic with its stderr if it fails.
pub fn run(args: &[&str]) {
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The far ends of one worker's channels, kept by the test.
pub struct Ends {
    pub stats: Arc<Mutex<WorkerStats>>,
    pub transmit: Sender<ControlDatagram>,
    pub _events: Receiver<WorkerEvent>,
    pub _commands: Sender<SaCommand>,
    pub _queries: Sender<Query>,
}

/// Links for worker `worker` of `handoff`, and the test's ends of them.
pub fn links(handoff: &Arc<Handoff>, worker: usize, stop: &Arc<AtomicBool>) -> (Links, Ends) {
    let (cmd_tx, commands) = bounded(16);
    let (query_tx, queries) = bounded(4);
    let (events, events_rx) = bounded(1024);
    let (transmit_tx, transmit) = bounded(16);
    let stats = Arc::new(Mutex::new(WorkerStats::default()));
    let links = Links {
        commands,
        queries,
        events,
        stats: Arc::clone(&stats),
        stop: Arc::clone(stop),
        transmit,
        handoff: Arc::clone(handoff),
        worker,
    };
    let ends = Ends {
        stats,
        transmit: transmit_tx,
        _events: events_rx,
        _commands: cmd_tx,
        _queries: query_tx,
    };
    (links, ends)
}

/// Receive one datagram within 5 s (a signal's EINTR is retried), or panic naming the error.
pub fn recv(sock: &UdpSocket, buf: &mut [u8], what: &str) -> (usize, SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        sock.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match sock.recv_from(buf) {
            Ok(r) => return r,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted && !left.is_zero() => {}
            Err(e) => panic!("{what}: {e}"),
        }
    }
}
