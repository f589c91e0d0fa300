//! Free TCP ports on 127.0.0.1.
//!
//! Every port handed out is remembered for the life of the process, so
//! two Ray heads started side by side never get the same port, even though
//! a port is only "free" until someone binds it.

use std::collections::BTreeSet;
use std::io;
use std::net::TcpListener;
use std::sync::Mutex;

/// Ports already handed out by this process.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Where port ranges are taken from: below Linux's default ephemeral range
/// (32768–60999), so ports the kernel picks for `bind(0)` and outgoing
/// connections do not land inside a range, and above 23000–23999, where
/// each head's Ray client proxier starts a server per client session
/// (Ray's `MIN_SPECIFIC_SERVER_PORT`..`MAX_SPECIFIC_SERVER_PORT`): a Ray
/// worker on one of those ports would take a session's port.
const RANGE_AREA: std::ops::Range<u16> = 24000..32000;

/// A port that was free on 127.0.0.1 a moment ago and that this process has
/// not handed out before.
pub fn free_port() -> io::Result<u16> {
    Ok(free_ports(1)?[0])
}

/// `n` distinct free ports, none handed out before by this process.
pub fn free_ports(n: usize) -> io::Result<Vec<u16>> {
    let mut handed_out = HANDED_OUT.lock().expect("port registry lock");
    // Listeners stay open until all `n` are chosen so the kernel cannot
    // give the same port twice.
    let mut listeners = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    let mut attempts = 0;
    while ports.len() < n {
        attempts += 1;
        if attempts > n * 20 + 100 {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "no free ports found",
            ));
        }
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        listeners.push(listener);
        if handed_out.insert(port) {
            ports.push(port);
        }
    }
    Ok(ports)
}

/// The first port of `len` consecutive ports that are all free and not
/// handed out before; they are handed out now. Used for Ray's worker ports.
pub fn free_port_range(len: u16) -> io::Result<u16> {
    let mut handed_out = HANDED_OUT.lock().expect("port registry lock");
    let span = RANGE_AREA.end - RANGE_AREA.start - len;
    // Start somewhere different in each process so parallel test binaries
    // rarely probe the same ranges.
    let seed = std::process::id() as u64 * 7919 + nanos();
    for attempt in 0..200u64 {
        let start = RANGE_AREA.start + ((seed + attempt * 977) % span as u64) as u16;
        let ports = start..start + len;
        let all_free = ports
            .clone()
            .all(|p| !handed_out.contains(&p) && TcpListener::bind(("127.0.0.1", p)).is_ok());
        if all_free {
            handed_out.extend(ports);
            return Ok(start);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no free range of {len} ports found"),
    ))
}

fn nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_bindable_and_never_repeat() {
        let first = free_ports(8).unwrap();
        let second = free_ports(8).unwrap();
        let mut all: Vec<u16> = first.iter().chain(&second).copied().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 16, "ports repeated: {first:?} {second:?}");
        for p in all {
            TcpListener::bind(("127.0.0.1", p)).expect("a free port must be bindable");
        }
    }

    #[test]
    fn ranges_are_free_and_disjoint() {
        let a = free_port_range(10).unwrap();
        let b = free_port_range(10).unwrap();
        assert!(a + 10 <= b || b + 10 <= a, "ranges overlap: {a} {b}");
        for p in (a..a + 10).chain(b..b + 10) {
            TcpListener::bind(("127.0.0.1", p)).expect("range port must be bindable");
            assert!(!RANGE_AREA.is_empty() && RANGE_AREA.contains(&p));
            assert!(
                !(23000..24000).contains(&p),
                "{p} is where Ray's proxier puts client session servers"
            );
        }
    }
}
