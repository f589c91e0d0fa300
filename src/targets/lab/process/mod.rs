//! The lab's real processes: Ray heads (and the pool sharing them), Ray
//! worker nodes, nginx, the Ray venv, free ports, and the tracking that
//! makes every process ours to stop by pid.

pub mod dashboard;
pub mod head_pool;
pub mod head_view;
pub mod managed;
pub mod nginx;
pub mod pids;
pub mod ports;
pub mod ray_head;
pub mod venv;
pub mod worker;
