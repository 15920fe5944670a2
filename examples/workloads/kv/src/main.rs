//! Example workload: a key-value service. The `server` partition owns the
//! table and answers `put` and `get` requests arriving on its channels,
//! one client per channel, until every client says it is done; each
//! `client` partition stores `count` entries, reads them back and checks
//! them. No memory is shared: every request and reply is a channel
//! message. One binary, two roles: the layout's `workload` key picks one.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

extern crate alloc;
#[cfg(target_os = "none")]
#[macro_use]
extern crate flotilla_rt;

mod proto;

/// Exit code of a client that read back a wrong value.
#[cfg(target_os = "none")]
const WRONG_VALUE: u64 = 10;

#[cfg(target_os = "none")]
fn run(ctx: &mut flotilla_rt::Context) -> flotilla_rt::Result {
    match ctx.workload() {
        "server" => server(ctx),
        "client" => client(ctx),
        other => Err(flotilla_rt::Failure::new(
            4,
            alloc::format!("unknown workload `{other}` (server or client)"),
        )),
    }
}

/// Serves every channel until all clients are done, waiting on all of them
/// at once (`flotilla_rt::wait_any`: asleep until a client's IPI on `ipi`
/// channels).
#[cfg(target_os = "none")]
fn server(ctx: &mut flotilla_rt::Context) -> flotilla_rt::Result {
    use alloc::format;
    use alloc::vec::Vec;
    use flotilla_rt::{Endpoint, Failure, Outcome, RecvError, Report};

    let mut clients: Vec<Endpoint> = Vec::new();
    for i in 0..ctx.channel_infos().len() {
        let ep = ctx
            .take_channel_at(i)
            .map_err(|e| Failure::new(5, format!("channel {i}: {e:?}")))?;
        clients.push(ep);
    }
    let mut table = proto::Table::default();
    let mut done = 0;
    while done < clients.len() {
        // A client that is done sends nothing more, so it never ends a wait.
        let mut all: Vec<&mut Endpoint> = clients.iter_mut().collect();
        let i = flotilla_rt::wait_any(&mut all)
            .ok_or_else(|| Failure::new(5, alloc::string::String::from("no clients to serve")))?;
        let ep = &mut *all[i];
        match ep.try_recv::<[u64; 3]>() {
            Ok([proto::DONE, _, _]) => {
                println!("server: {} is done", ep.peer());
                done += 1;
            }
            Ok(request) => {
                let reply = table.serve(request);
                ep.send(&reply)
                    .map_err(|e| Failure::new(5, format!("replying to {}: {e:?}", ep.peer())))?;
            }
            Err(RecvError::Empty) => {}
            Err(e) => return Err(Failure::new(5, format!("from {}: {e:?}", ep.peer()))),
        }
    }
    println!("server: {} requests, {} keys", table.served, table.len());
    Ok(Outcome::ok(
        Report::new()
            .with("requests", table.served)
            .with("keys", table.len())
            .with("clients", clients.len()),
    ))
}

/// How long a client waits for one reply (far longer than a reply takes,
/// even emulated).
#[cfg(target_os = "none")]
const REPLY_TIMEOUT: core::time::Duration = core::time::Duration::from_secs(30);

/// Stores `count` entries, reads them back, checks them, says done.
#[cfg(target_os = "none")]
fn client(ctx: &mut flotilla_rt::Context) -> flotilla_rt::Result {
    use alloc::format;
    use flotilla_rt::{Failure, Outcome, Report};

    let id = ctx.args().u64_or("id", 1)?;
    let count = ctx.args().u64_or("count", 100)?;
    let mut server = ctx
        .take_channel("server")
        .map_err(|e| Failure::new(5, format!("no channel to the server: {e:?}")))?;
    let mut ask = |request: [u64; 3]| -> Result<[u64; 3], Failure> {
        server
            .send(&request)
            .map_err(|e| Failure::new(5, format!("sending: {e:?}")))?;
        // A server that stopped answering ends this client with a clear
        // error instead of hanging it until the run's timeout.
        server
            .recv_for::<[u64; 3]>(REPLY_TIMEOUT)
            .map_err(|e| Failure::new(5, format!("receiving the reply: {e}")))
    };
    for i in 0..count {
        let (key, value) = proto::entry(id, i);
        ask([proto::PUT, key, value])?;
    }
    let mut wrong = 0u64;
    for i in 0..count {
        let (key, value) = proto::entry(id, i);
        if ask([proto::GET, key, 0])? != [proto::OK, value, 0] {
            wrong += 1;
        }
    }
    server
        .send(&[proto::DONE, 0, 0])
        .map_err(|e| Failure::new(5, format!("sending done: {e:?}")))?;
    println!("{}: {count} puts, {count} gets, {wrong} wrong", ctx.name());
    let report = Report::new()
        .with("puts", count)
        .with("gets", count)
        .with("ok", wrong == 0);
    Ok(if wrong == 0 {
        Outcome::ok(report)
    } else {
        Outcome::with_code(WRONG_VALUE, report)
    })
}

#[cfg(target_os = "none")]
flotilla_rt::entry!(run);

#[cfg(not(target_os = "none"))]
fn main() {}
