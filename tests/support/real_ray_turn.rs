//! The lock that lets only one test at a time drive real Ray clients.
//!
//! Each Ray head's proxier picks the port of a client's own server from the
//! same fixed list (23000-23999) by checking that it is free and then
//! starting the server on it. Two heads on one machine serving real clients
//! at the same moment can pick the same port, and one client then fails
//! with "Starting Ray client server failed". Tests that run their own head
//! and real clients take turns. A file lock works for threads (`cargo
//! test`) and for processes (`cargo nextest`) alike.

/// Blocks until this test's turn; the turn lasts as long as the guard.
pub fn real_ray_turn() -> nix::fcntl::Flock<std::fs::File> {
    let path = std::env::temp_dir().join("rayconform-real-ray-client.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("cannot lock {}: {e}", path.display()))
}
