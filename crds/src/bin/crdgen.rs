//! Writes the CRD manifests to `config/crds/` (or the directory given as the first
//! argument). `--check` compares instead of writing and fails on any difference.
fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let mut check = false;
    let mut dir = None;
    for a in args.by_ref() {
        if a == "--check" {
            check = true;
        } else {
            dir = Some(std::path::PathBuf::from(a));
        }
    }
    let dir = dir.unwrap_or_else(ferrolb_crds::crdgen::default_dir);
    match ferrolb_crds::crdgen::run(&dir, check) {
        Ok(written) => {
            for p in written {
                println!("{}", p.display());
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("crdgen: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
