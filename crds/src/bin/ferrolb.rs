//! `ferrolb`: tools for users. `ferrolb convert [--namespace NS] [FILE...]` turns
//! MetalLB objects into FerroLB's: YAML on stdout, what was dropped on stderr.

use std::io::Read;
use std::process::ExitCode;

use ferrolb_crds::convert::{Options, convert};

const USAGE: &str = "usage: ferrolb convert [--namespace NS] [FILE...]
  Reads MetalLB YAML (metallb.io/v1beta1, v1beta2) from FILEs or stdin and writes
  FerroLB YAML (ferrolb.io/v1beta1) to stdout. Objects in metallb-system (or in no
  namespace) move to NS (default ferrolb-system). Everything dropped or changed is
  listed on stderr.";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("convert") => {}
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    }
    let mut opts = Options::default();
    let mut files = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--namespace" | "-n" => match args.next() {
                Some(ns) => opts.namespace = ns,
                None => {
                    eprintln!("--namespace needs a value\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => files.push(a),
        }
    }
    let mut input = String::new();
    if files.is_empty()
        && let Err(e) = std::io::stdin().read_to_string(&mut input)
    {
        eprintln!("ferrolb convert: stdin: {e}");
        return ExitCode::FAILURE;
    }
    for f in &files {
        match std::fs::read_to_string(f) {
            // A separator keeps the last document of one file apart from the next.
            Ok(t) => input.push_str(&format!("{t}\n---\n")),
            Err(e) => {
                eprintln!("ferrolb convert: {f}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    match convert(&input, &opts) {
        Ok(c) => {
            for w in &c.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", c.yaml);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferrolb convert: {e}");
            ExitCode::FAILURE
        }
    }
}
