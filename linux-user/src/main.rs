//! `flotilla-linux`: run from a Linux partition's `/init`, it finds the
//! partition's Flotilla block from `/proc/cmdline`, and plays the built-in
//! `pingpong` workload's part on every channel (see the library,
//! `linux_user`). Exit code: 0 when some channel did its job, 5 when none
//! did, 4 when there is no usable block.

use std::process::ExitCode;

use linux_user::{cmdline, session, PROGRAM};

#[cfg(target_os = "linux")]
fn main() -> ExitCode {
    let code = match start() {
        Ok(code) => code,
        Err(why) => {
            println!("{PROGRAM}: {why}");
            linux_user::NO_BLOCK_EXIT_CODE
        }
    };
    println!("{PROGRAM}: exit {code}");
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}

#[cfg(target_os = "linux")]
fn start() -> Result<i32, String> {
    let line = std::fs::read_to_string("/proc/cmdline")
        .map_err(|e| format!("cannot read /proc/cmdline: {e} (is /proc mounted?)"))?;
    let gpa = cmdline::block_gpa(&line).map_err(|e| e.to_string())?;
    let mut mem = linux_user::arch::DevMem::open().map_err(|e| {
        format!(
            "cannot open {}: {e} (needs root and CONFIG_DEVMEM)",
            linux_user::arch::DEV_MEM
        )
    })?;
    let block = session::read_block(&mut mem, gpa).map_err(|e| e.to_string())?;
    let summary =
        session::run(&mut mem, &block, &mut std::io::stdout()).map_err(|e| e.to_string())?;
    Ok(summary.exit_code())
}

#[cfg(not(target_os = "linux"))]
fn main() -> ExitCode {
    println!("{PROGRAM}: runs only on Linux");
    ExitCode::FAILURE
}
