//! Free TCP ports on 127.0.0.1.

use std::io;
use std::net::TcpListener;

/// A port that was free on 127.0.0.1 a moment ago (bind to port 0, read it,
/// release it). Another process may still take it; callers that need many
/// ports should ask for them together with [`free_ports`].
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// `n` distinct free ports, all held open until every one is chosen so the
/// same port is never handed out twice.
pub fn free_ports(n: usize) -> io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// A contiguous range of `len` ports that were all free, starting at the
/// returned port. Used for Ray's worker port range.
pub fn free_port_range(len: u16) -> io::Result<u16> {
    for _ in 0..50 {
        let start = free_port()?;
        let Some(end) = start.checked_add(len) else {
            continue;
        };
        if end >= 65000 {
            continue;
        }
        let all_free = (start..end).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok());
        if all_free {
            return Ok(start);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no free range of {len} ports found"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let ports = free_ports(8).unwrap();
        let mut sorted = ports.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 8, "ports repeated: {ports:?}");
        for p in ports {
            TcpListener::bind(("127.0.0.1", p)).expect("a free port must be bindable");
        }
    }

    #[test]
    fn range_is_free() {
        let start = free_port_range(10).unwrap();
        for p in start..start + 10 {
            TcpListener::bind(("127.0.0.1", p)).expect("range port must be bindable");
        }
    }
}
