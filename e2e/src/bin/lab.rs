//! `lab`: FerroLB end to end on one machine (see `ferrolb_e2e::scenario`).
//! `./e2e/lab` builds and runs it; `backend` is the HTTP "pod" it starts.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ferrolb_e2e::lab::unavailable;
use ferrolb_e2e::scenario::{Lab, Row, http, table};

#[derive(Parser)]
#[command(about = "FerroLB end to end in network namespaces: nodes, a BGP router, clients")]
struct Args {
    /// Leave the lab running and print how to use and remove it.
    #[arg(long)]
    keep: bool,
    /// Remove what earlier `--keep` runs left, then exit.
    #[arg(long)]
    down: bool,
    /// Skip the failover step.
    #[arg(long)]
    no_failover: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// An HTTP server answering every request with its name (the lab's pods).
    Backend {
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Some(Command::Backend { name, port }) => http::serve(&name, port).map(|()| true),
        None if args.down => down(),
        None => run(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("lab: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn say(msg: &str) {
    eprintln!("==> {msg}");
}

fn down() -> anyhow::Result<bool> {
    let removed = ferrolb_e2e::scenario::down()?;
    if removed.is_empty() {
        println!("nothing to remove");
    }
    for r in removed {
        println!("removed {r}");
    }
    Ok(true)
}

fn run(args: &Args) -> anyhow::Result<bool> {
    if let Some(why) = unavailable() {
        anyhow::bail!("the lab needs network namespaces: {why}");
    }
    let mut lab = Lab::build(&mut say)?;
    lab.start(&mut say)?;
    say("requesting every address from the LAN client and the remote client");
    let rows = lab.rows(Duration::from_secs(10))?;
    println!("\nServices (namespace/name, address, how it is announced, who answered):\n");
    print!("{}", render(&rows));
    let mut ok = rows.iter().all(|r| r.lan.is_ok() && r.remote.is_ok());
    let (ip, spread) = lab.ecmp_spread(30)?;
    let parts: Vec<String> = spread.iter().map(|(n, c)| format!("n{n} ({c})")).collect();
    println!(
        "\nECMP: 30 connections from the remote client to {ip} entered through {}",
        parts.join(", ")
    );
    ok &= spread.len() >= 2 && spread.values().sum::<usize>() == 30;

    if !args.no_failover {
        println!();
        let f = lab.fail_l2_owner(&mut say)?;
        let new_owner = f.new_owner.map_or("none".into(), |n| format!("n{n}"));
        match f.outage {
            Some(o) => println!(
                "\nFailover: n{} died; {} moved to {new_owner}; outage {:.0} ms ({} of {} requests failed)",
                f.victim,
                f.address,
                o.duration.as_secs_f64() * 1e3,
                o.failed,
                o.sent
            ),
            None => {
                ok = false;
                println!(
                    "\nFailover: n{} died; no request to {} succeeded within 4 s",
                    f.victim, f.address
                )
            }
        }
        println!(
            "  detection: speaker membership (the Node object stays Ready; the speakers found n{} dead themselves)",
            f.victim
        );
        match f.router_converged {
            Some(t) => println!(
                "  the router dropped n{}'s BGP routes after {:.1} s (hold time 3 s)",
                f.victim,
                t.as_secs_f64()
            ),
            None => {
                ok = false;
                println!("  the router still sends to n{} after 15 s", f.victim)
            }
        }
        ok &= f.new_owner.is_some_and(|n| n != f.victim);
        let rows = lab.rows(Duration::from_secs(10))?;
        println!("\nAfter the failover:\n");
        print!("{}", render(&rows));
        ok &= rows.iter().all(|r| r.lan.is_ok() && r.remote.is_ok());
    }

    println!(
        "\nFerroLB files (configuration, status/, logs): {}",
        lab.dir().display()
    );
    if args.keep {
        println!("\n{}", lab.keep());
    } else {
        say("tearing down (use --keep to leave it running)");
    }
    if !ok {
        println!(
            "\nRESULT: FAILED (a request failed; logs are in the directory above with --keep)"
        );
    } else {
        println!("\nRESULT: every request succeeded");
    }
    Ok(ok)
}

fn render(rows: &[Row]) -> String {
    let cell = |r: &Result<String, String>| match r {
        Ok(body) => format!("200 from {body}"),
        Err(e) => format!("FAILED: {e}"),
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.service.clone(),
                r.address.to_string(),
                r.mode.clone(),
                r.announced_by.clone(),
                cell(&r.lan),
                cell(&r.remote),
            ]
        })
        .collect();
    table::render(
        &[
            "service",
            "address",
            "mode",
            "announced by",
            "LAN client",
            "remote client",
        ],
        &rows,
    )
}
